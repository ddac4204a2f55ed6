"""``maestro bench rag``: a quick run on a tiny corpus written here, and the missing-corpus error.

The tiny corpus stands in for Debian's python3.11-doc (same layout: ``<root>/library/*.rst.txt``), so
the test needs neither the package nor more than a few seconds of MiniLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maestro.bench.rag import EDGE_PASSES, INSTALL_SCRIPT, bench_rag, load_questions
from maestro.core.errors import ConfigurationError, NotFound
from maestro.core.settings import Settings

MAESTRO = str(Path(sys.executable).with_name("maestro"))

DOCS = {
    "json": (
        "JSON encoder and decoder",
        "json.dumps serialises an object to a JSON formatted string. If *sort_keys* is true, the output "
        "of dictionaries is sorted by key. Use separators=(',', ':') for the most compact output.",
        "json.loads deserialises a string containing a JSON document to a Python object.",
    ),
    "textwrap": (
        "Text wrapping and filling",
        "textwrap.dedent removes any common leading whitespace from every line in a text, which lines "
        "up triple-quoted strings with the left edge of the display.",
        "textwrap.fill wraps a single paragraph so that every line is at most *width* characters long.",
    ),
    "bisect": (
        "Array bisection algorithm",
        "bisect.insort inserts an item into a sorted list while keeping it in sorted order, using a "
        "binary search to find the insertion point.",
        "bisect.bisect_left returns the leftmost position where an item can be inserted.",
    ),
    "zlib": (
        "Compression compatible with gzip",
        "zlib.compress compresses the bytes in *data*, returning a bytes object with the compressed "
        "data. The *level* is an integer from 0 to 9 controlling the level of compression.",
        "zlib.crc32 computes a CRC checksum of data.",
    ),
    "shutil": (
        "High-level file operations",
        "shutil.copytree recursively copies an entire directory tree rooted at *src* to a directory "
        "named *dst*, and returns the destination directory.",
        "shutil.rmtree deletes an entire directory tree.",
    ),
    "uuid": (
        "UUID objects according to RFC 4122",
        "uuid.uuid4 generates a random UUID. uuid.uuid5 makes a UUID from the SHA-1 hash of a namespace "
        "identifier and a name.",
        "The *hex* attribute is the UUID as a 32-character lowercase hexadecimal string.",
    ),
}

QUESTIONS = [
    ("q1", "How do I get dictionary keys sorted in the output of json.dumps?", "json"),
    ("q2", "How can I strip the common indentation from a triple-quoted string?", "textwrap"),
    ("q3", "How do I insert into a sorted list and keep it sorted?", "bisect"),
    ("q4", "How do I compress bytes in memory with a chosen compression level?", "zlib"),
    ("q5", "How do I copy a whole directory tree recursively?", "shutil"),
    ("q6", "How do I generate a random UUID?", "uuid"),
]


def _rst(title: str, first: str, second: str) -> str:
    return (
        f"{title}\n{'=' * len(title)}\n\n{first}\n\nUsage\n-----\n\n{second}\n\n"
        f"Notes\n-----\n\nThis module is part of the standard library.\n"
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "_sources"
    (root / "library").mkdir(parents=True)
    for name, parts in DOCS.items():
        (root / "library" / f"{name}.rst.txt").write_text(_rst(*parts), encoding="utf-8")
    return root


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    rows = [{"id": i, "question": q, "source": f"library/{name}.rst.txt"} for i, q, name in QUESTIONS]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_quick_run_reports_quality_ingest_and_latency(
    settings: Settings, corpus: Path, questions: Path
) -> None:
    report = bench_rag(settings, quick=True, corpus=corpus, questions_path=questions, pad_to=1_000).to_dict()
    json.dumps(report)
    assert report["bench"] == "rag"
    assert set(report) == {"bench", "machine", "metrics", "baseline", "targets"}
    metrics, baseline = report["metrics"], report["baseline"]
    assert metrics["library_files"] == len(DOCS)
    assert metrics["questions"] == len(QUESTIONS)
    assert metrics["library_chunks"] >= len(DOCS)
    assert metrics["padded.chunks"] == 1_000
    for mode in ("dense", "sparse", "hybrid"):
        for name in ("recall@1", "recall@5", "mrr@10"):
            assert 0.0 <= metrics[f"{mode}.{name}"] <= 1.0
        assert metrics[f"{mode}.recall@1"] <= metrics[f"{mode}.recall@5"]
    assert metrics["hybrid.recall@5"] >= 5 / 6  # six distinct topics: hybrid finds (nearly) all
    for scale in ("library", "padded"):
        for kind in ("retrieval", "with_embedding"):
            for side in (metrics, baseline):
                assert 0.0 < side[f"{scale}.{kind}_p50_ms"] <= side[f"{scale}.{kind}_p95_ms"]
        assert metrics[f"{scale}.retrieval_queries"] == EDGE_PASSES * len(QUESTIONS)
        assert metrics[f"{scale}.with_embedding_queries"] == len(QUESTIONS)
        assert baseline[f"{scale}.retrieval_queries"] == len(QUESTIONS)
    for side in (metrics, baseline):
        assert side["ingest_no_pii_warm_chunks_per_s"] > 0
        assert side["padded.upsert_chunks_per_s"] > 0
    assert metrics["ingest_no_pii_cold_chunks_per_s"] > 0
    assert set(report["targets"]) == {
        "hybrid.recall@5",
        "hybrid_minus_dense.recall@5",
        "hybrid_minus_sparse.recall@5",
        "padded.retrieval_p95_ms",
    }
    for target in report["targets"].values():
        assert set(target) == {"value", "target", "met"}
        assert isinstance(target["met"], bool)


def test_missing_corpus_exits_1_naming_the_install_script(tmp_path: Path, questions: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    environment["MAESTRO_DATA_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [
            MAESTRO,
            "bench",
            "rag",
            "--json",
            "--corpus",
            str(tmp_path / "nowhere"),
            "--questions",
            str(questions),
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert INSTALL_SCRIPT in done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "not_found"
    assert INSTALL_SCRIPT in error["message"]


def test_corpus_and_questions_are_rag_options_only(tmp_path: Path) -> None:
    done = subprocess.run(
        [MAESTRO, "bench", "router", "--corpus", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert "bench rag" in done.stderr


def test_packaged_questions_name_library_sources() -> None:
    questions = load_questions()
    assert len(questions) >= 100
    assert all(q.source.startswith("library/") and q.source.endswith(".rst.txt") for q in questions)
    assert len({q.id for q in questions}) == len(questions)


def test_malformed_question_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "no id or source"}\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="id, question and source"):
        load_questions(path)
    with pytest.raises(NotFound, match="question file not found"):
        load_questions(tmp_path / "missing.jsonl")
