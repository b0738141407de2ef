"""The floor the scale benchmark compares the bot against: the openai SDK alone streaming the
same answers from the same fake model, CPU per answer, in a process of its own.

    python -m bench.bare_sdk MODEL_URL [COUNT]     (prints the CPU-seconds per answer)
"""

from __future__ import annotations

import asyncio
import resource
import sys


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def stream_all(url: str, count: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)

    async def one(n: int) -> int:
        stream = await client.chat.completions.create(
            model="fake", stream=True, messages=[{"role": "user", "content": f"question {n}"}]
        )
        pieces = 0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
        return pieces

    await asyncio.gather(*(one(n) for n in range(10)))  # warm up: imports, connections
    started = cpu()
    await asyncio.gather(*(one(n) for n in range(count)))
    spent = (cpu() - started) / count
    await client.close()
    return spent


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    print(f"{asyncio.run(stream_all(sys.argv[1], count)):.6f}")
