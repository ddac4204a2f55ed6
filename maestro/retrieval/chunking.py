"""Structure-following chunking: sections by heading, code by function/class, text by sentence.

* Markdown (and HTML, which the loader turns into Markdown-ish text): sections from llama-index's
  ``MarkdownNodeParser`` (headings, ignoring ``#`` lines inside fenced code); inside a section, blocks
  (paragraphs, whole fenced code blocks) are packed up to ``max_chars``.
* reStructuredText: sections from underlined (and overlined) titles, then the same packing.
* Python: top-level functions and classes via :mod:`ast` (a class too big for one chunk is split into its
  methods); tree-sitter is not installed, so other languages use line windows that prefer blank lines.
* Plain text: paragraphs packed up to ``max_chars``.
* A block still longer than ``max_chars`` goes to llama-index's ``SentenceSplitter`` (character budget,
  regex sentence splitting: no NLTK or tiktoken data is touched) or, for code, to line windows.

Every chunk's text is exactly ``doc.text[start:end]``: splitter output is located in the source and the
source slice is kept. A chunk id is ``sha256(source + "\\n" + text)[:32]``; a chunk repeated verbatim in
one document is kept once. No llama-index component used here consults ``Settings.llm`` or
``Settings.embed_model``; nothing here reaches the network.
"""

from __future__ import annotations

import ast
import hashlib
import re
from datetime import UTC, datetime
from typing import NamedTuple

from maestro.retrieval.injection import looks_like_instructions
from maestro.retrieval.loaders import Document
from maestro.retrieval.types import ChunkRecord

__all__ = ["Piece", "chunk_document", "chunk_id", "split_pieces"]


class Piece(NamedTuple):
    """A span ``[start, end)`` of the document text and the section it belongs to."""

    start: int
    end: int
    section: str | None


def chunk_id(source: str, text: str) -> str:
    """The stable id of a chunk: first 32 hex digits of sha256(source + newline + text)."""
    return hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:32]


def chunk_document(
    source: str,
    doc: Document,
    *,
    tenant: str,
    collection: str,
    max_chars: int = 1500,
    retention: str = "standard",
    ingested_at: datetime | None = None,
) -> list[ChunkRecord]:
    """Split ``doc`` into :class:`ChunkRecord` s with section titles, spans and injection flags.

    The PII flag is left ``False``: the PII guard lives above retrieval; the ingest service sets it.
    """
    when = ingested_at or datetime.now(UTC)
    records: list[ChunkRecord] = []
    seen: set[str] = set()
    for piece in split_pieces(doc, max_chars=max_chars):
        text = doc.text[piece.start : piece.end]
        cid = chunk_id(source, text)
        if cid in seen:
            continue
        seen.add(cid)
        verdict = looks_like_instructions(text)
        extra: dict[str, object] = {"kind": doc.kind}
        if doc.language:
            extra["language"] = doc.language
        if verdict.reasons:
            extra["injection_reasons"] = list(verdict.reasons)
        records.append(
            ChunkRecord(
                chunk_id=cid,
                tenant=tenant,
                collection=collection,
                source=source,
                text=text,
                start=piece.start,
                end=piece.end,
                section=piece.section,
                injection_suspect=verdict.suspect,
                retention=retention,
                ingested_at=when,
                extra=extra,
            )
        )
    return records


def split_pieces(doc: Document, *, max_chars: int = 1500) -> list[Piece]:
    """The chunk spans of ``doc`` (whitespace-trimmed, non-empty, in document order)."""
    if max_chars < 100:
        raise ValueError(f"max_chars must be at least 100, got {max_chars}")
    text = doc.text
    if doc.kind in ("markdown", "html"):
        sections = _markdown_sections(text)
        pieces = [p for s in sections for p in _pack_blocks(text, s, max_chars, fenced=True)]
    elif doc.kind == "rst":
        pieces = [p for s in _rst_sections(text) for p in _pack_blocks(text, s, max_chars, fenced=False)]
    elif doc.kind == "code" and doc.language == "python":
        pieces = _python_pieces(text, max_chars)
    elif doc.kind == "code":
        pieces = _line_windows(text, Piece(0, len(text), None), max_chars, titled=True)
    else:
        pieces = _pack_blocks(text, Piece(0, len(text), None), max_chars, fenced=False)
    return [t for p in pieces if (t := _trim(text, p)) is not None]


def _trim(text: str, piece: Piece) -> Piece | None:
    start, end = piece.start, piece.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Piece(start, end, piece.section) if end > start else None


# --- sections --------------------------------------------------------------------------------------------


def _sections_from_starts(text: str, starts: list[tuple[int, int, str | None]]) -> list[Piece]:
    """Sections run from one heading to the next; a heading with no body joins the next section.

    ``starts`` holds ``(start, heading_end, title)``: where the heading begins and where its line(s) end.
    """
    if not starts or starts[0][0] > 0:
        starts = [(0, 0, None), *starts]
    pieces: list[Piece] = []
    pending: int | None = None
    for i, (start, heading_end, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        begin = start if pending is None else pending
        if i + 1 < len(starts) and title is not None and not text[heading_end:end].strip():
            pending = begin  # heading only: carry it into the next section
            continue
        pending = None
        if text[begin:end].strip():
            pieces.append(Piece(begin, end, title))
    return pieces


def _markdown_sections(text: str) -> list[Piece]:
    from llama_index.core.node_parser import MarkdownNodeParser
    from llama_index.core.schema import Document as LlamaDocument

    parser = MarkdownNodeParser.from_defaults(include_metadata=True, include_prev_next_rel=False)
    nodes = parser.get_nodes_from_documents([LlamaDocument(text=text)])
    starts: list[tuple[int, int, str | None]] = []
    cursor = 0
    for node in nodes:
        content = node.get_content()
        first = content.split("\n", 1)[0]
        heading = re.match(r"^(#+)\s+(.*)", first)
        title: str | None = None
        found: int | None = None
        if heading:
            title = heading.group(2).strip()
            path = str(node.metadata.get("header_path", "/")).strip("/")
            title = f"{path.replace('/', ' > ')} > {title}" if path else title
            # The parser rebuilds the heading line ("#" * level + " " + title): find the original line.
            hashes, words = re.escape(heading.group(1)), re.escape(heading.group(2))
            pattern = re.compile(rf"^{hashes}[ \t]+{words}", re.M)
            match = pattern.search(text, cursor)
            found = match.start() if match else None
        else:
            found = _locate(text, content, cursor)
        if found is None:
            continue  # cannot place this node: its text stays in the previous section
        line_end = text.find("\n", found)
        starts.append((found, len(text) if line_end < 0 else line_end, title))
        cursor = found + 1
    return _sections_from_starts(text, starts)


_RST_ADORN = re.compile(r"^([=\-~^\"'`#*+:._<>!$%&,;?@\\/|])\1{2,}[ \t]*$")


def _rst_sections(text: str) -> list[Piece]:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    starts: list[tuple[int, int, str | None]] = []
    i = 0
    while i + 1 < len(lines):
        title, under = lines[i], lines[i + 1]
        if title.strip() and not _RST_ADORN.match(title) and _RST_ADORN.match(under):
            if len(under.rstrip()) >= len(title.rstrip()):
                over = i > 0 and _RST_ADORN.match(lines[i - 1]) and lines[i - 1][0] == under[0]
                starts.append((offsets[i - 1] if over else offsets[i], offsets[i + 2] - 1, title.strip()))
                i += 2
                continue
        i += 1
    return _sections_from_starts(text, starts)


# --- packing blocks --------------------------------------------------------------------------------------


def _blocks(text: str, section: Piece, fenced: bool) -> list[tuple[int, int, bool]]:
    """Blank-line separated blocks of a section: ``(start, end, is_code)``; fenced code stays whole."""
    blocks: list[tuple[int, int, bool]] = []
    pos = section.start
    block_start: int | None = None
    in_fence = False
    is_code = False
    for line in text[section.start : section.end].splitlines(keepends=True):
        stripped = line.strip()
        if fenced and stripped.startswith(("```", "~~~")):
            if not in_fence and block_start is not None:
                blocks.append((block_start, pos, False))
                block_start = None
            in_fence = not in_fence
            is_code = True
            block_start = pos if block_start is None else block_start
        elif not stripped and not in_fence:
            if block_start is not None:
                blocks.append((block_start, pos, is_code))
            block_start, is_code = None, False
        elif block_start is None:
            block_start = pos
        pos += len(line)
    if block_start is not None:
        blocks.append((block_start, section.end, is_code))
    return blocks


def _pack_blocks(text: str, section: Piece, max_chars: int, *, fenced: bool) -> list[Piece]:
    pieces: list[Piece] = []
    current: tuple[int, int] | None = None
    for start, end, is_code in _blocks(text, section, fenced):
        if end - start > max_chars:
            big = Piece(start, end, section.section)
            split = _line_windows if is_code else _sentence_pieces
            parts = split(text, big, max_chars)
            if current and current[1] - current[0] <= max_chars // 5 and parts:
                # A short lead-in (often just the heading) joins the first part instead of standing alone.
                parts[0] = Piece(current[0], parts[0].end, parts[0].section)
            elif current:
                pieces.append(Piece(*current, section.section))
            current = None
            pieces.extend(parts)
        elif current and end - current[0] <= max_chars:
            current = (current[0], end)
        else:
            if current:
                pieces.append(Piece(*current, section.section))
            current = (start, end)
    if current:
        pieces.append(Piece(*current, section.section))
    return pieces


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def _regex_sentences(text: str) -> list[str]:
    """Sentence splitter for SentenceSplitter (keeps the whitespace, so splits re-join exactly)."""
    parts: list[str] = []
    last = 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[last : match.end()])
        last = match.end()
    parts.append(text[last:])
    return [p for p in parts if p]


def _sentence_pieces(text: str, block: Piece, max_chars: int) -> list[Piece]:
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=max_chars,
        chunk_overlap=min(150, max_chars // 10),
        tokenizer=list,  # one "token" per character: the budget is in characters
        chunking_tokenizer_fn=_regex_sentences,
        include_metadata=False,
        include_prev_next_rel=False,
    )
    segment = text[block.start : block.end]
    pieces: list[Piece] = []
    cursor = 0
    for chunk in splitter.split_text(segment):
        found = _locate(segment, chunk, cursor)
        if found is None:
            continue
        span = _span_of(segment, chunk, found)
        pieces.append(Piece(block.start + span[0], block.start + span[1], block.section))
        cursor = found + 1
    return pieces or _line_windows(text, block, max_chars)


def _locate(haystack: str, needle: str, cursor: int) -> int | None:
    """Where ``needle`` starts in ``haystack`` at or after ``cursor`` (whitespace-insensitive fallback)."""
    exact = haystack.find(needle, cursor)
    if exact >= 0:
        return exact
    words = needle.split()
    if not words:
        return None
    match = re.compile(r"\s+".join(re.escape(w) for w in words)).search(haystack, cursor)
    return match.start() if match else None


def _span_of(haystack: str, needle: str, start: int) -> tuple[int, int]:
    if haystack.startswith(needle, start):
        return start, start + len(needle)
    match = re.compile(r"\s+".join(re.escape(w) for w in needle.split())).match(haystack, start)
    return (start, match.end()) if match else (start, start + len(needle))


# --- code ------------------------------------------------------------------------------------------------

_DEFINITION = re.compile(
    r"^\s*(?:(?:export|public|private|protected|static|async|pub|abstract|final|default)\s+)*"
    r"(?:def|class|func|fn|function|interface|struct|enum|impl|trait|module|type|object)\s+([A-Za-z_]\w*)",
    re.M,
)


def _line_windows(text: str, block: Piece, max_chars: int, titled: bool = False) -> list[Piece]:
    """Windows of whole lines up to ``max_chars``, cut at a blank line when one is past half-way."""
    pieces: list[Piece] = []
    start = pos = block.start
    last_blank: int | None = None

    def emit(cut: int) -> None:
        section = block.section
        if titled:
            found = _DEFINITION.search(text, start, cut)
            section = found.group(1) if found else block.section
        pieces.append(Piece(start, cut, section))

    for line in text[block.start : block.end].splitlines(keepends=True):
        while len(line) > max_chars:  # a single huge line: hard cuts
            if pos > start:
                emit(pos)
            emit_end = pos + max_chars
            pieces.append(Piece(pos, emit_end, block.section))
            line = line[max_chars:]
            pos = start = emit_end
            last_blank = None
        if pos + len(line) - start > max_chars and pos > start:
            cut = last_blank if last_blank is not None and last_blank - start > max_chars // 2 else pos
            emit(cut)
            start = cut
            last_blank = None
        pos += len(line)
        if not line.strip():
            last_blank = pos
    if pos > start:
        emit(pos)
    if len(pieces) > 1 and pieces[-1].end - pieces[-1].start < max_chars // 10:
        # A tiny tail (a closing line or two) joins the window before it.
        tail = pieces.pop()
        pieces[-1] = Piece(pieces[-1].start, tail.end, pieces[-1].section)
    return pieces


def _python_pieces(text: str, max_chars: int) -> list[Piece]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return _line_windows(text, Piece(0, len(text), None), max_chars, titled=True)
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return _python_body(text, tree.body, offsets, 0, len(text), None, max_chars)


def _python_body(
    text: str,
    body: list[ast.stmt],
    offsets: list[int],
    start: int,
    end: int,
    prefix: str | None,
    max_chars: int,
) -> list[Piece]:
    """Definitions become their own pieces; the code between them is packed into line windows."""
    pieces: list[Piece] = []
    gap_start = start
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in body:
        if not isinstance(node, defs) or node.end_lineno is None:
            continue
        first_line = min([node.lineno] + [d.lineno for d in node.decorator_list])
        node_start, node_end = offsets[first_line - 1], offsets[node.end_lineno]
        pieces.extend(_gap(text, gap_start, node_start, prefix, max_chars))
        name = f"{prefix}.{node.name}" if prefix else node.name
        if node_end - node_start <= max_chars:
            pieces.append(Piece(node_start, node_end, name))
        elif isinstance(node, ast.ClassDef):
            pieces.extend(_python_body(text, node.body, offsets, node_start, node_end, name, max_chars))
        else:
            pieces.extend(_line_windows(text, Piece(node_start, node_end, name), max_chars))
        gap_start = node_end
    pieces.extend(_gap(text, gap_start, end, prefix, max_chars))
    return pieces


def _gap(text: str, start: int, end: int, section: str | None, max_chars: int) -> list[Piece]:
    """Module- or class-level code between definitions (imports, constants, class headers)."""
    return _line_windows(text, Piece(start, end, section), max_chars) if text[start:end].strip() else []
