"""Discord's part of `python -m bot doctor`: the token, the Message Content intent (from the
application's flags), the invite URL with exactly the permissions the bot needs, and whether the
slash commands Discord has are the ones this version defines."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
import discord

from adapters.discord.client import PERMISSIONS, intents
from adapters.discord.commands import build_tree
from adapters.discord.runner import INTENT_HELP
from adapters.discord.settings import load_discord_settings
from bot.doctor import Check

AREA = "discord"
MESSAGE_CONTENT = 1 << 19  # application flags: GATEWAY_MESSAGE_CONTENT
MESSAGE_CONTENT_LIMITED = 1 << 18  # the same for bots in fewer than 100 servers


def _wanted_commands() -> dict[str, str]:
    """This version's commands, name → description, built as the running bot builds them."""
    client: Any = discord.Client(intents=intents())
    tree = build_tree(client, cast(Any, None))  # listing needs no bot
    return {c.name: getattr(c, "description", "") for c in tree.get_commands()}


async def checks() -> list[Check]:
    settings = load_discord_settings()
    if settings.api_url:
        discord.http.Route.BASE = settings.api_url.rstrip("/")
    assert settings.bot_token is not None
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    found: list[Check] = []
    try:
        try:
            me = await http.static_login(settings.bot_token.get_secret_value())
        except discord.LoginFailure:
            return [
                Check.fail(
                    AREA,
                    "Discord refused DISCORD_BOT_TOKEN",
                    "reset the token on the Bot page of the Developer Portal and copy the new one",
                )
            ]
        except (aiohttp.ClientError, OSError, discord.HTTPException) as exc:
            return [Check.fail(AREA, f"cannot reach Discord: {exc}", "check the connection")]
        found.append(Check.ok(AREA, f"bot token valid: {me['username']} ({me['id']})"))
        app = await http.application_info()
        flags = int(app.get("flags") or 0)
        if flags & (MESSAGE_CONTENT | MESSAGE_CONTENT_LIMITED):
            found.append(Check.ok(AREA, "the Message Content intent is enabled"))
        else:
            found.append(
                Check.fail(
                    AREA,
                    "the Message Content intent is not enabled",
                    INTENT_HELP.removeprefix(
                        "the Message Content intent is not enabled for this bot; "
                    ),
                )
            )
        invite = discord.utils.oauth_url(
            app["id"], permissions=PERMISSIONS, scopes=("bot", "applications.commands")
        )
        found.append(Check.ok(AREA, f"invite URL: {invite}"))
        registered = {
            c["name"]: c.get("description", "") for c in await http.get_global_commands(app["id"])
        }
        wanted = _wanted_commands()
        if registered == wanted:
            found.append(Check.ok(AREA, f"slash commands in sync: {', '.join(sorted(wanted))}"))
        else:
            missing = sorted(set(wanted) - set(registered))
            extra = sorted(set(registered) - set(wanted))
            changed = sorted(n for n in set(wanted) & set(registered) if wanted[n] != registered[n])
            parts = [
                f"{what}: {', '.join(names)}"
                for what, names in (("missing", missing), ("not ours", extra), ("changed", changed))
                if names
            ]
            found.append(
                Check.warn(
                    AREA,
                    "slash commands differ from Discord's (" + "; ".join(parts) + ")",
                    "`python -m bot run` syncs them when it starts",
                )
            )
    finally:
        await http.close()
    return found
