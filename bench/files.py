"""Files benchmark: reading a 100-page PDF, a 5 MB log and a 12-megapixel photo, and the memory
a 10 MB file costs while it is downloaded, read and quoted.

    python -m bench.files

Extraction runs as the bot runs it (pypdf, charset-normalizer, Pillow); prompt tokens are what
the quoted part of each document costs against the whole document (default 8,000-token prompt,
documents get three quarters). The memory figure comes from a child process that downloads the
file over HTTP from this process through the adapters' downloader, with its peak RSS reset just
before (Linux /proc/self/clear_refs): peak above idle, against the goal of 3× the file size.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import sys
import time

from aiohttp import web

from bench.harness import row
from bot.files.documents import read_pdf, read_text_file
from bot.files.images import prepare_image
from bot.files.quoting import quote_documents
from bot.tokens import load_counter
from tests.fakes.documents import image_bytes, pdf_bytes

PROMPT = 8000
DOCUMENT_BUDGET = PROMPT * 3 // 4
WORDS = ["deploy", "cache", "latency", "request", "worker", "queue", "timeout", "retry", "shard"]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."


def log_bytes(size: int, rng: random.Random) -> bytes:
    lines, total, n = [], 0, 0
    while total < size:
        level = rng.choice(("INFO", "INFO", "INFO", "WARN", "ERROR"))
        stamp = f"2026-11-29T10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
        line = f"{stamp} {level} worker-{n % 16} {sentence(rng)}"
        lines.append(line)
        total += len(line) + 1
        n += 1
    return "\n".join(lines).encode()


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def documents() -> None:
    rng = random.Random(7)
    counter = load_counter("o200k_base")
    pages = ["\n".join(sentence(rng) for _ in range(40)) for _ in range(100)]
    pdf = pdf_bytes(pages)
    print(f"100-page PDF ({len(pdf) / 1e6:.2f} MB), counting with {counter.name}")
    document, seconds = timed(read_pdf, "report.pdf", pdf, max_pages=300)
    row("extraction", f"{seconds * 1000:.0f} ms ({seconds * 10:.1f} ms per page)")
    quoted, quoting = timed(quote_documents, counter, [document], DOCUMENT_BUDGET)
    whole = counter.count(document.text)
    row("prompt tokens (quoted / whole document)", f"{quoted.tokens:,} / {whole:,}")
    row("quoting", f"{quoting * 1000:.0f} ms; {quoted.notes[0][:70]}…")

    log = log_bytes(5 * 1024 * 1024, rng)
    print(f"5 MB log ({len(log):,} bytes)")
    document, seconds = timed(read_text_file, "app.log", log)
    row("extraction (decode, split into line ranges)", f"{seconds * 1000:.0f} ms")
    quoted, quoting = timed(quote_documents, counter, [document], DOCUMENT_BUDGET)
    row("prompt tokens (quoted)", f"{quoted.tokens:,} of a {DOCUMENT_BUDGET:,}-token share")
    row("quoting (stops where the budget does)", f"{quoting * 1000:.0f} ms")

    photo = image_bytes(4000, 3000, "JPEG")
    print(f"12-megapixel JPEG ({len(photo) / 1e6:.2f} MB)")
    image, seconds = timed(
        prepare_image, "photo.jpg", photo, long_side=2048, short_side=768, max_pixels=40_000_000
    )
    row("downscale and re-encode", f"{seconds * 1000:.0f} ms → {image.width}×{image.height}, "
        f"{len(image.data) / 1000:.0f} KB, {image.tokens} image tokens")  # fmt: skip


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM back to the current RSS


async def child(url: str, size: int) -> None:
    """Download, read and quote one file the way the engine does; print idle and peak RSS."""
    from adapters.discord.files import DiscordFiles
    from bot.files.limits import FileLimits
    from bot.files.reading import FileReader
    from bot.files.refs import FileRef

    counter = load_counter("o200k_base")
    reader = FileReader(FileLimits(max_file_bytes=size + 1))
    fetcher = DiscordFiles()
    reader.register("bench", fetcher)
    warm = FileRef("bench", "warm.log", url + "?warm=1", size=10)
    quote_documents(counter, (await reader.read([warm])).documents, DOCUMENT_BUDGET)
    idle = rss_kb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    reading = await reader.read([FileRef("bench", "big.log", url, size=size)])
    quoted = quote_documents(counter, reading.documents, DOCUMENT_BUDGET)
    seconds = time.perf_counter() - started
    peak = rss_kb("VmHWM")
    await fetcher.aclose()
    print(idle, peak, f"{seconds:.3f}", quoted.tokens, flush=True)


async def memory() -> None:
    size = 10 * 1024 * 1024
    body = log_bytes(size, random.Random(3))[:size]

    async def serve(request: web.Request) -> web.Response:
        data = body[:200] if request.query.get("warm") else body
        return web.Response(body=data, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/file", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.files", "--child", f"http://127.0.0.1:{port}/file",
            str(size), stdout=asyncio.subprocess.PIPE, env={**os.environ},
        )  # fmt: skip
        out, _ = await process.communicate()
    finally:
        await runner.cleanup()
    idle, peak, seconds, tokens = out.decode().split()
    above = (int(peak) - int(idle)) * 1024
    print(f"10 MB log downloaded, read and quoted in a fresh process ({float(seconds):.2f} s)")
    row("idle RSS", f"{int(idle) / 1024:.0f} MB")
    row("peak RSS above idle", f"{above / 1e6:.1f} MB = {above / size:.2f}× the file (goal ≤ 3×)")
    row("prompt tokens (quoted)", f"{int(tokens):,}")


def bomb(kind: str) -> tuple[str, bytes]:
    """A small upload that unpacks to far more than it weighs."""
    import zlib

    from tests.fakes.documents import docx_bomb

    if kind == "docx":
        return "bomb.docx", docx_bomb(2_000_000)  # about 70 MB of XML
    if kind == "pdf":  # one page whose content stream inflates to 200 MB of spaces
        inflated = zlib.compress(b" " * 200_000_000, 9)
        body = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
                b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
                b"4 0 obj<</Length " + str(len(inflated)).encode()
                + b"/Filter/FlateDecode>>stream\n")  # fmt: skip
        tail = b"\nendstream endobj\ntrailer<</Root 1 0 R>>\nstartxref\n0\n%%EOF"
        return "bomb.pdf", body + inflated + tail
    if kind == "png":  # 20,000 × 20,000 pixels of one colour
        from PIL import Image

        out = io.BytesIO()
        Image.new("1", (20_000, 20_000)).save(out, "PNG")
        return "bomb.png", out.getvalue()
    text = ("ünïcödé " * 700_000).encode("utf-16")  # a 10 MB text file in UTF-16
    return "wide.txt", text


def bomb_child(kind: str) -> None:
    """Read one bomb as the bot does, in a fresh process; print its peak RSS above idle."""
    from bot.errors import FileProblem
    from bot.files.documents import read_document
    from bot.files.kinds import kind_of

    name, data = bomb(kind)
    idle = rss_kb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    try:
        if kind == "png":
            prepare_image(name, data, long_side=2048, short_side=768, max_pixels=40_000_000)
        else:
            read_document(name, kind_of(name, ""), [data], max_pages=300)
        said = "read"
    except FileProblem as exc:
        said = str(exc)
    seconds = time.perf_counter() - started
    print(len(data), rss_kb("VmHWM") - idle, f"{seconds:.2f}", said, flush=True)


def bombs() -> None:
    import subprocess

    print(
        "Files that unpack to far more than they weigh (fresh process each; goal: peak <= +100 MB)"
    )
    for kind in ("docx", "pdf", "png", "text"):
        out = subprocess.run([sys.executable, "-m", "bench.files", "--bomb", kind],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        size, peak, seconds, said = out.stdout.strip().split(" ", 3)
        row(f"{kind} ({int(size) / 1e3:,.0f} KB uploaded)",
            f"peak +{int(peak) / 1024:.0f} MB, {seconds} s: {said[:70]}")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], int(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--bomb":
        bomb_child(sys.argv[2])
        return
    documents()
    asyncio.run(memory())
    bombs()


if __name__ == "__main__":
    main()
