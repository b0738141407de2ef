"""discord.py's rate-limit buckets, swept in amortized time.

discord.py keeps a bucket per route and channel. Once it holds 256, every new bucket makes it
scan them all for the ones idle five minutes (`HTTPClient._try_clear_expired_ratelimits`). A bot
answering in hundreds of threads at once adds two buckets a thread (its post and its edits), so
each new thread costs a scan of every bucket still alive: quadratic, 6% of the bot's CPU in a
burst of 600 mentions (`bench/scale.py`).

Here the same sweep runs only once the buckets have grown by `STEP` since the last one: what it
removes is the same (buckets idle five minutes, nothing pending), the client just holds at most
`STEP` more of them between sweeps.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

STEP = 256  # discord.py's own threshold: a sweep per STEP new buckets at most


def amortize_bucket_sweep(http: Any) -> bool:
    """Make `http` (a discord.py HTTPClient) sweep its buckets once per `STEP` new ones instead
    of at every new one past 256. False, and the client untouched, if this discord.py does not
    have the sweep this expects."""
    sweep = getattr(http, "_try_clear_expired_ratelimits", None)
    buckets = getattr(http, "_buckets", None)
    if not callable(sweep) or not isinstance(buckets, dict):
        log.debug("discord.py's rate-limit sweep is not where expected; left as it is")
        return False
    swept_at = 0  # how many buckets the last sweep left

    def amortized() -> None:
        nonlocal swept_at
        if len(buckets) < swept_at + STEP:
            return
        sweep()
        swept_at = len(buckets)

    http._try_clear_expired_ratelimits = amortized
    return True
