"""A scripted model that answers like a summarizer, so summary plumbing can be checked exactly.

Chunk calls return a bullet for every three messages, citing them; merge calls return one
bullet citing every id they were given; final calls return the shape asked for, citing the first
ids they were given plus an id that does not exist (which must be dropped).
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.openai_server import Reply

IDS = re.compile(r"\[(m\d+)\]")


def summarizer(request: dict[str, Any]) -> Reply:
    system = request["messages"][0]["content"]
    body = request["messages"][-1]["content"]
    ids = list(dict.fromkeys(IDS.findall(body)))
    korean = "write in Korean" in system
    if system.startswith("You read one part"):
        word = "부분" if korean else "noted"
        bullets = [
            "- " + word + " " + "".join(f"[{i}]" for i in ids[n : n + 3])
            for n in range(0, len(ids), 3)
        ]
        return Reply(text="\n".join(bullets))
    if system.startswith("You merge notes"):
        firsts = [found[0] for line in body.splitlines() if (found := IDS.findall(line))]
        bullets = [
            "- merged " + "".join(f"[{i}]" for i in firsts[n : n + 10])
            for n in range(0, len(firsts), 10)
        ]
        return Reply(text="\n".join(bullets))
    cited = "".join(f"[{i}]" for i in ids[:3])
    gist = "요약입니다." if korean else "The team talked."
    return Reply(text=f"{gist}\n\n**Key points**\n- point one {cited}\n- invented [m99999]")
