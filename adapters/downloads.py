"""Downloading a shared file: capped while it streams, never handing a token to another host.

Both platforms' fetchers use this: Slack sends its bot token to its own file host, Discord's
CDN needs none. Every failure is a `FileProblem` whose message is the user's sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.errors import FileProblem
from bot.files.limits import size_text

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)


class Downloaded(bytearray):
    """The bytes of a file, with the media type the server sent. A bytearray grows in place
    (large buffers are remapped, not copied), so a download costs the file's size once."""

    content_type: str = ""


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    name: str,
    limit: int,
    secret_headers: Mapping[str, str] | None = None,
) -> Downloaded:
    """GET `url`, following redirects by hand: `secret_headers` (a token) go only to the host of
    `url` itself, never to a host a redirect points at. More than `limit` bytes, announced or
    streamed, is a FileProblem naming the limit."""
    home = urlsplit(url).netloc
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FileProblem(f"I could not download {name}: it is not at a web address.")
        headers = dict(secret_headers or {}) if parts.netloc == home else {}
        try:
            async with session.get(
                url, headers=headers, allow_redirects=False, timeout=TIMEOUT
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    target = response.headers.get("Location")
                    if not target:
                        break
                    url = urljoin(url, target)
                    continue
                return await _body(response, name, limit)
        except FileProblem:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("download of %s failed: %s: %s", name, type(exc).__name__, exc)
            raise FileProblem(
                f"I could not download {name} (the connection failed); please try again."
            ) from None
    raise FileProblem(f"I could not download {name}: it is redirected too many times.")


async def _body(response: aiohttp.ClientResponse, name: str, limit: int) -> Downloaded:
    if response.status in (401, 403):
        raise FileProblem(f"I am not allowed to download {name}.")
    if response.status in (404, 410):
        raise FileProblem(f"{name} is no longer available to download.")
    if response.status != 200:
        log.warning("download of %s answered HTTP %d", name, response.status)
        raise FileProblem(f"I could not download {name} (HTTP {response.status}); try again later.")
    announced = response.content_length
    if announced is not None and announced > limit:
        raise FileProblem(f"{name} is {size_text(announced)}, over my limit of {size_text(limit)}.")
    body = Downloaded()
    body.content_type = response.headers.get("Content-Type", "")
    async for chunk in response.content.iter_chunked(CHUNK):
        if len(body) + len(chunk) > limit:
            raise FileProblem(f"{name} is larger than my limit of {size_text(limit)}.")
        body += chunk
    return body
