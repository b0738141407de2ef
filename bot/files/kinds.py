"""What kind of file a name and a media type describe. Pure."""

from __future__ import annotations

from typing import Literal

FileKind = Literal["image", "text", "pdf", "docx", "unsupported"]

IMAGE_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
IMAGE_EXTENSIONS = {"png", "jpg", "jpeg", "gif", "webp"}
TEXT_EXTENSIONS = frozenset(
    [
        "txt",
        "text",
        "md",
        "markdown",
        "rst",
        "csv",
        "tsv",
        "json",
        "jsonl",
        "ndjson",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "env",
        "log",
        "out",
        "err",
        "xml",
        "html",
        "htm",
        "css",
        "scss",
        "sql",
        "graphql",
        "proto",
        "py",
        "pyi",
        "ipynb",
        "js",
        "mjs",
        "cjs",
        "ts",
        "tsx",
        "jsx",
        "java",
        "kt",
        "kts",
        "scala",
        "go",
        "rs",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cs",
        "rb",
        "php",
        "pl",
        "pm",
        "swift",
        "m",
        "mm",
        "r",
        "jl",
        "lua",
        "sh",
        "bash",
        "zsh",
        "fish",
        "ps1",
        "bat",
        "dockerfile",
        "makefile",
        "gradle",
        "tf",
        "hcl",
        "vue",
        "svelte",
        "dart",
        "ex",
        "exs",
        "erl",
        "hs",
        "ml",
        "clj",
        "diff",
        "patch",
        "properties",
        "srt",
        "vtt",
        "tex",
    ]
)
TEXT_TYPES_OUTSIDE_TEXT = {
    "application/json",
    "application/x-ndjson",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/javascript",
    "application/x-sh",
    "application/sql",
}
PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SUPPORTED = (
    "I can read PNG, JPEG, GIF and WebP images, PDFs, Word documents (.docx) and text files "
    "such as logs, CSV, JSON, YAML, Markdown and source code"
)


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    if "." not in base:
        return base  # Dockerfile, Makefile
    return base.rsplit(".", 1)[-1]


def kind_of(name: str, mimetype: str = "") -> FileKind:
    """The kind by extension first (platforms often say application/octet-stream), then type."""
    ext = extension(name)
    media = mimetype.split(";", 1)[0].strip().lower()
    if ext in IMAGE_EXTENSIONS or media in IMAGE_TYPES:
        return "image"
    if ext == "pdf" or media == PDF_TYPE:
        return "pdf"
    if ext == "docx" or media == DOCX_TYPE:
        return "docx"
    if ext in TEXT_EXTENSIONS or media.startswith("text/") or media in TEXT_TYPES_OUTSIDE_TEXT:
        return "text"
    return "unsupported"
