"""Answers about files: the real openai SDK against the local model server, real memory."""

from __future__ import annotations

import base64
import io
from contextlib import aclosing

import pytest
from PIL import Image

from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import FileProblem, ImagesRefused, InvalidRequest
from bot.files.limits import FileLimits
from bot.files.reading import FileReader
from bot.files.refs import FileRef
from bot.store.memory.base import ThreadMemory
from bot.tokens import EstimatingCounter
from tests.fakes.documents import docx_bytes, image_bytes, pdf_bytes
from tests.fakes.openai_server import FakeOpenAI, last_user_text

THREAD = ThreadRef("slack", "T1", "C1", "1700000000.000100")


class Shelf:
    """An in-process fetcher: files by URL, and which were fetched."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fetched: list[str] = []

    async def fetch(self, ref: FileRef, limit: int) -> bytes:
        self.fetched.append(ref.name)
        if ref.url not in self.files:
            raise FileProblem(f"I could not download {ref.name}.")
        return self.files[ref.url]


def ref(name: str, data: bytes = b"") -> FileRef:
    return FileRef("slack", name, f"mem://{name}", size=len(data))


def msg(text: str, *files: FileRef, n: int = 1) -> IncomingMessage:
    return IncomingMessage(THREAD, text, "U1", "Mina", message_id=f"m{n}", files=files)


async def ask(engine: ConversationEngine, message: IncomingMessage) -> str:
    async with aclosing(engine.answer(message)) as deltas:
        return "".join([d async for d in deltas])


def files_engine(memory: ThreadMemory, model, shelf: Shelf, **kwargs) -> ConversationEngine:
    reader = FileReader(FileLimits())
    reader.register("slack", shelf)
    return ConversationEngine(
        memory, model, EstimatingCounter(), EngineConfig(max_prompt_tokens=4000),
        files=reader, **kwargs,
    )  # fmt: skip


def decoded(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


async def test_an_image_is_sent_downscaled_and_memory_only_names_it(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    shot = image_bytes(3000, 1200)
    engine = files_engine(memory, model, Shelf({"mem://error.png": shot}))
    await ask(engine, msg("what does this error mean?", ref("error.png", shot)))
    assert len(fake_openai.images) == 1
    assert decoded(fake_openai.images[0]).size == (1920, 768)
    assert fake_openai.images[0].startswith("data:image/jpeg;base64,")
    state = await memory.load(THREAD)
    assert "error.png was shown with this message" in state.turns[0].text
    assert "base64" not in state.turns[0].text
    await ask(engine, msg("and how do I fix it?", n=2))
    assert len(fake_openai.images) == 1  # not sent again
    assert "no longer visible" in str(fake_openai.requests[-1]["messages"])


async def test_a_model_without_vision_answers_from_text_and_says_so(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    fake_openai.vision = False
    shot = image_bytes(200, 100)
    engine = files_engine(memory, model, Shelf({"mem://a.png": shot}))
    answer = await ask(engine, msg("what is this?", ref("a.png", shot)))
    assert answer.startswith("_I cannot see images with the model I use")
    assert "echo: Mina: what is this?" in answer
    assert engine.images_refused
    # learned: the next image is not even downloaded, and the user is told again
    answer = await ask(engine, msg("and this?", ref("a.png", shot), n=2))
    assert "I did not see a.png" in answer and len(fake_openai.requests) == 3


async def test_vision_on_reports_the_refusal(memory, model, fake_openai: FakeOpenAI) -> None:
    fake_openai.vision = False
    shot = image_bytes(200, 100)
    engine = files_engine(memory, model, Shelf({"mem://a.png": shot}), vision="on")
    with pytest.raises(ImagesRefused):
        await ask(engine, msg("what is this?", ref("a.png", shot)))


async def test_vision_off_never_downloads_images(memory, model, fake_openai: FakeOpenAI) -> None:
    shelf = Shelf({"mem://a.png": image_bytes(10, 10)})
    engine = files_engine(memory, model, shelf, vision="off")
    answer = await ask(engine, msg("look", ref("a.png", b"x")))
    assert "I did not see a.png" in answer and shelf.fetched == [] and not fake_openai.images


async def test_a_pdf_is_quoted_with_pages_and_kept_for_follow_ups(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    pdf = pdf_bytes(["Budget: 40k EUR", "Deadline: March 3"])
    engine = files_engine(memory, model, Shelf({"mem://plan.pdf": pdf}))
    await ask(engine, msg("when is the deadline?", ref("plan.pdf", pdf)))
    sent = last_user_text(fake_openai.requests[-1])
    assert '--- file "plan.pdf" (PDF, 2 pages) ---' in sent and "[p. 2]\nDeadline: March 3" in sent
    await ask(engine, msg("and the budget?", n=2))
    history = str(fake_openai.requests[-1]["messages"])
    assert "Budget: 40k EUR" in history  # the document came back from memory


async def test_a_huge_log_is_cut_to_the_budget_and_the_user_is_told(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    log = "\n".join(f"2026-11-29T10:{n % 60:02d} worker-{n} ok" for n in range(50_000)).encode()
    engine = files_engine(memory, model, Shelf({"mem://app.log": log}))
    answer = await ask(engine, msg("any errors?", ref("app.log", log)))
    assert answer.startswith("_app.log is too long to read whole: I read it up to lines")
    prompt_chars = sum(len(str(m["content"])) for m in fake_openai.requests[-1]["messages"])
    assert prompt_chars < 4000 * 4  # within the prompt budget (4,000 tokens)


async def test_unreadable_files_get_a_sentence_and_the_text_is_still_answered(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    engine = files_engine(memory, model, Shelf({"mem://x.pdf": b"garbage"}))
    answer = await ask(
        engine, msg("summary please", ref("x.pdf", b"garbage"), ref("y.zip", b"zz"), ref("z.txt"))
    )
    assert "x.pdf is damaged or not really a PDF" in answer
    assert "I cannot read y.zip" in answer and "I could not download z.txt" in answer
    assert "echo: Mina: summary please" in answer
    assert "[attached but not readable: x.pdf, y.zip, z.txt]" in last_user_text(
        fake_openai.requests[-1]
    )


async def test_files_without_text_mean_describe_them(memory, model, fake_openai) -> None:
    doc = docx_bytes(["Minutes of the kickoff"])
    engine = files_engine(memory, model, Shelf({"mem://m.docx": doc}))
    await ask(engine, msg("", ref("m.docx", doc)))
    assert last_user_text(fake_openai.requests[-1]).startswith("Mina: Please describe or summarize")
    with pytest.raises(InvalidRequest, match=r"I cannot read y\.zip"):
        await ask(engine, msg("", ref("y.zip", b"zz"), n=2))


async def test_files_dropped_without_a_question_are_acknowledged_then_used(
    memory: ThreadMemory, model, fake_openai: FakeOpenAI
) -> None:
    shot, pdf = image_bytes(100, 80), pdf_bytes(["Agenda: hiring"])
    shelf = Shelf({"mem://d.png": shot, "mem://a.pdf": pdf})
    engine = files_engine(memory, model, shelf)
    said = await engine.acknowledge_files(msg("", ref("d.png", shot), ref("a.pdf", pdf)))
    assert said == "Got d.png and a.pdf — what would you like to know?"
    assert not fake_openai.requests and shelf.fetched == ["a.pdf"]
    await ask(engine, msg("what's on the agenda and in the picture?", n=2))
    assert len(fake_openai.images) == 1  # the image shared before the question is shown now
    assert "Agenda: hiring" in str(fake_openai.requests[-1]["messages"])
    await ask(engine, msg("thanks", n=3))
    assert len(fake_openai.images) == 1


async def test_summarizing_a_document_cites_pages(memory, model, fake_openai: FakeOpenAI) -> None:
    from tests.fakes.summarizer_model import summarizer

    fake_openai.responder = summarizer
    pdf = pdf_bytes(["Intro text", "Decision: ship in May", "Risks: hiring"])
    engine = files_engine(memory, model, Shelf({"mem://r.pdf": pdf}))
    summary = await engine.summarize_files([ref("r.pdf", pdf)])
    assert "(p. " in summary.text and "http" not in summary.text
    assert "document" in fake_openai.requests[-1]["messages"][0]["content"]
    with pytest.raises(InvalidRequest, match="no document here"):
        await engine.summarize_files([])
