"""A channel window read for a summary: the log first, history for the gap, and a ceiling that
leaves the summarizer able to say the window was cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.channel_window import MOST, window_messages
from bot.summaries.channel_log import InProcessChannelLog
from bot.summaries.sources import SourceMessage
from bot.summaries.windows import Window


async def test_a_time_window_is_read_up_to_the_ceiling_it_is_given() -> None:
    log = InProcessChannelLog(retention_seconds=86_400, max_messages=100_000)
    await log.resume()
    now = datetime.now(UTC)
    for n in range(MOST + 50):  # more than the old fixed ceiling, which cut silently
        at = now - timedelta(seconds=MOST + 50 - n)
        await log.record("s", SourceMessage(f"m{n}", "Alice", f"update {n}", at))

    async def no_history(*_: object) -> list[SourceMessage]:
        return []

    read = await window_messages(log, "s", Window(seconds=86_400), no_history, most=MOST + 11)
    assert len(read) == MOST + 11  # one past a summarizer taking MOST + 10: it says it was cut
    assert read[-1].text == f"update {MOST + 49}"
    counted = await window_messages(log, "s", Window(count=20), no_history, most=MOST + 11)
    assert len(counted) == 20  # "the last 20 messages" is exactly that
