"""Turn a file into text for chunking, or say why it was skipped; never raise for a bad file.

Supported: Markdown, reStructuredText (``.rst``, ``.rest``, ``.rst.txt``), plain text, HTML (tags,
scripts and styles stripped; headings kept as Markdown ``#`` lines so the chunker can follow them) and
source code by extension. PDF text is extracted page by page with pypdf (pages separated by a blank
line); encrypted, corrupt or image-only PDFs are skipped with the reason.

A file is skipped, with a reason, when it cannot be read, is not a regular file, is empty (or only
whitespace), is larger than ``max_bytes`` (default 5 MB), has an unsupported type, contains NUL bytes
(binary) or is not valid UTF-8. Line endings are normalised to ``\\n``; character spans computed later
refer to :attr:`Document.text`, i.e. the extracted text, not the raw bytes (for HTML: the text without
tags).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Document",
    "DocumentKind",
    "Skipped",
    "document_kind",
    "html_to_text",
    "load_document",
]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

DocumentKind = Literal["markdown", "rst", "text", "html", "pdf", "code"]


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded file: its text (newlines normalised) and kind; ``language`` for source code."""

    text: str
    kind: DocumentKind
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not loaded: a short machine-readable ``code`` and a sentence for the report."""

    reason: str
    code: str = "skipped"


_SUFFIX_KIND: dict[str, DocumentKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".rest": "rst",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}

_CODE_LANGUAGE: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust",
    ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".cs": "csharp",
    ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objective-c", ".sh": "shell",
    ".bash": "shell", ".zsh": "shell", ".sql": "sql", ".lua": "lua", ".pl": "perl", ".r": "r",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".ini": "ini", ".cfg": "ini",
    ".proto": "protobuf", ".tf": "terraform", ".rego": "rego",
}  # fmt: skip

# Files without an extension that are text by convention.
_TEXT_NAMES = frozenset({"readme", "license", "licence", "notice", "authors", "changelog", "copying"})
_CODE_NAMES = {"makefile": "make", "dockerfile": "docker"}


def document_kind(path: Path) -> tuple[DocumentKind, str | None] | None:
    """The kind (and code language) a path's name implies, or ``None`` for an unsupported type."""
    name = path.name.lower()
    if name.endswith((".rst.txt", ".rest.txt")):
        return "rst", None
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_KIND:
        return _SUFFIX_KIND[suffix], None
    if suffix in _CODE_LANGUAGE:
        return "code", _CODE_LANGUAGE[suffix]
    if not suffix:
        if name in _TEXT_NAMES:
            return "text", None
        if name in _CODE_NAMES:
            return "code", _CODE_NAMES[name]
    return None


def load_document(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document | Skipped:
    """Load ``path`` as a :class:`Document`, or return :class:`Skipped` with the reason; never raises."""
    try:
        return _load(path, max_bytes)
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, or a parser choked on it
        return Skipped(f"could not read {path.name}: {type(exc).__name__}: {exc}", code="unreadable")


def _load_pdf(path: Path, data: bytes) -> Document | Skipped:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return Skipped(f"{path.name} is an encrypted PDF: decrypt it first", code="encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, KeyError, TypeError, AttributeError) as exc:  # pypdf's ways of saying "corrupt"
        return Skipped(f"corrupt PDF: {type(exc).__name__}: {exc}", code="corrupt")
    text = "\n\n".join(page for page in pages if page).replace("\x00", "")
    if not text.strip():
        return Skipped("the PDF has no extractable text (scanned images?)", code="empty")
    return Document(text=text.replace("\r\n", "\n").replace("\r", "\n"), kind="pdf")


def _load(path: Path, max_bytes: int) -> Document | Skipped:
    if not path.is_file():
        return Skipped(f"{path} is not a regular file", code="not_a_file")
    kind_lang = document_kind(path)
    if kind_lang is None:
        return Skipped(f"unsupported file type {path.suffix or path.name!r}", code="unsupported")
    kind, language = kind_lang
    size = path.stat().st_size
    if size == 0:
        return Skipped("empty file", code="empty")
    if size > max_bytes:
        return Skipped(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit", code="too_large")
    data = path.read_bytes()
    if kind == "pdf":
        if not data.startswith(b"%PDF-"):
            return Skipped("not a PDF file (no %PDF- header)", code="corrupt")
        return _load_pdf(path, data)
    if b"\x00" in data:
        return Skipped("binary content (NUL bytes)", code="binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Skipped(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; convert the file to UTF-8",
            code="encoding",
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "html":
        text = html_to_text(text)
    if not text.strip():
        return Skipped("no text content" if kind == "html" else "empty file (whitespace only)", code="empty")
    return Document(text=text, kind=kind, language=language)


_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "object"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "table", "tr", "ul", "ol",
     "dl", "dt", "dd", "blockquote", "figure", "figcaption", "form", "hr", "br", "li", "td", "th"}
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _TextExtractor(HTMLParser):
    """HTML to Markdown-ish text: headings as ``#`` lines, ``<pre>`` as fenced blocks, scripts dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag == "pre":
            self._pre_depth += 1
            self.parts.append("\n\n```\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n" if tag in ("br", "tr", "dd", "dt") else "\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif self._skip_depth:
            return
        elif tag in _HEADINGS:
            self.parts.append("\n\n")
        elif tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
            self.parts.append("\n```\n\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self.parts.append(data)
        else:
            collapsed = " ".join(data.split())
            if collapsed:
                lead = " " if data[:1].isspace() else ""
                trail = " " if data[-1:].isspace() else ""
                self.parts.append(lead + collapsed + trail)


def html_to_text(html: str) -> str:
    """Extract readable text from HTML (stdlib parser; tolerant of broken markup)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    out: list[str] = []
    in_fence = False
    for raw in "".join(parser.parts).split("\n"):
        if raw.strip() == "```":
            in_fence = not in_fence
            out.append("```")
            continue
        line = raw.rstrip() if in_fence else raw.strip()
        # Outside code blocks, collapse runs of blank lines (keep at most one).
        if line or in_fence or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
