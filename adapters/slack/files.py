"""Slack files: what a message carries (pure), and the fetcher that downloads them.

A file's `url_private` needs the bot token (scope `files:read`); without the scope Slack answers
200 with its sign-in page instead of the file, which is caught here and said plainly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.downloads import download
from bot.errors import FileProblem
from bot.files.kinds import extension
from bot.files.refs import FileRef

SIGN_IN_PAGE = (
    "Slack sent me a sign-in page instead of {name}: I need the files:read permission; "
    "an admin needs to add it and reinstall me."
)


def _files_of(item: dict[str, Any]) -> list[FileRef]:
    refs = []
    files = item.get("files")
    for file in files if isinstance(files, list) else []:
        if not isinstance(file, dict) or file.get("mode") in ("tombstone", "hidden_by_limit"):
            continue  # deleted, or beyond a free workspace's history limit
        if file.get("file_access") == "check_file_info" and isinstance(file.get("id"), str):
            # Shared from another organization (Slack Connect): only its id comes with the
            # event; files.info tells the rest (`complete_files`).
            refs.append(FileRef(platform="slack", name=f"file {file['id']}", url="",
                                file_id=file["id"]))  # fmt: skip
            continue
        name = file.get("name") or file.get("title")
        url = file.get("url_private_download") or file.get("url_private")
        if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
            continue
        size = file.get("size")
        mimetype = file.get("mimetype")
        refs.append(
            FileRef(
                platform="slack",
                name=name[:200],
                url=url,
                size=size if isinstance(size, int) and size >= 0 else 0,
                mimetype=mimetype if isinstance(mimetype, str) else "",
                file_id=str(file.get("id") or ""),
            )
        )
    return refs


SHARED_UNOPENED = (
    "I could not open a file shared from another organization ({reason}); "
    "ask its owner to share it here, or paste what it says."
)


async def complete_files(client: Any, refs: tuple[FileRef, ...]) -> tuple[FileRef, ...]:
    """Look up the files that came as an id only (Slack Connect) with files.info; one that
    cannot be looked up carries the sentence saying so."""
    done: list[FileRef] = []
    for ref in refs:
        if ref.url or not ref.file_id:
            done.append(ref)
            continue
        try:
            answer = await client.files_info(file=ref.file_id)
            found = _files_of({"files": [answer.get("file")]})
            reason = "Slack gave me no way to download it"
        except SlackApiError as exc:
            found = []
            reason = f"Slack said {exc.response.get('error', 'no')}"
        usable = [f for f in found if f.url]
        done.append(usable[0] if usable else replace(ref, unopened=SHARED_UNOPENED.format(
            reason=reason)))  # fmt: skip
    return tuple(done)


def file_refs(event: dict[str, Any]) -> tuple[FileRef, ...]:
    """The files of a message and of the messages shared or forwarded into it."""
    refs = _files_of(event)
    attachments = event.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict):
            refs += _files_of(attachment)
    return tuple(refs)


class SlackFiles:
    """The core's FileFetcher for Slack."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, ref: FileRef, limit: int) -> bytes | bytearray:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        data = await download(
            self._session,
            ref.url,
            name=ref.name,
            limit=limit,
            secret_headers={"Authorization": f"Bearer {self._token}"},
        )
        if data.content_type.startswith("text/html") and extension(ref.name) not in ("html", "htm"):
            raise FileProblem(SIGN_IN_PAGE.format(name=ref.name))
        return data

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
