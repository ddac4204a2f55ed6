"""``maestro bench rag``: retrieval quality, ingest speed and query latency on the Python 3.11 docs.

Corpus: the reStructuredText sources of the standard library's reference (Debian ``python3.11-doc``,
``/usr/share/doc/python3.11/html/_sources/library/*.rst.txt``; ``scripts/python-docs.sh`` installs it).
Questions: ``maestro/evals/datasets/rag_python311.jsonl`` (``{"id", "question", "source", ...}``: the
file that answers each question, named the way the ingestor names it, e.g. ``library/json.rst.txt``).

Everything runs in one temporary data dir with the real MiniLM embedder and a fresh embedding cache:

* **Quality** (Qdrant Edge): ``<mode>.recall@1``, ``<mode>.recall@5`` and ``<mode>.mrr@10`` for
  ``dense``, ``sparse`` and ``hybrid`` (RRF in the store). A hit is a chunk whose source is the
  question's source. Recall@k comes from a ``limit=k`` query (what ``Retriever.search(k=5)`` returns:
  the fusion depth depends on the limit); MRR from a ``limit=10`` query, 0 when no chunk of the source
  is in the top 10.
* **Ingest** through :class:`~maestro.retrieval.ingest.Ingestor` without a PII detector: cold (empty
  embedding cache, so MiniLM embeds every chunk; the model is loaded before the clock starts) and
  cache-warm (the same files into fresh stores: Edge in ``metrics``, qdrant-client local in
  ``baseline``). The Edge store is built with automatic optimisation off; the HNSW build is timed on its
  own (``edge_index_build_*_s``).
* **Latency**, hybrid, k=5 (``metrics``: Qdrant Edge; ``baseline``: qdrant-client local mode):
  ``retrieval_*`` is ``store.search`` with precomputed query vectors; ``with_embedding_*`` is
  ``Retriever.search`` (MiniLM query embedding included). Measured at the library's size
  (``library.*``) and after padding the collection with synthetic chunks to 50,000 (``padded.*``; 5,000
  with ``quick``). Synthetic chunks re-use real chunks: sentences shuffled, dense vector perturbed with
  Gaussian noise and re-normalised, a fifth of the sparse terms dropped, a ``synthetic/`` source and a
  new chunk id, same tenant; they are upserted with their vectors (no embedding), and each store's upsert
  rate is reported (``padded.upsert_chunks_per_s``). qdrant-client local mode searches by brute force in
  Python (~0.5 s a hybrid query at 5k chunks, ~5 s at 50k), so it answers an evenly spread subset of the
  questions (``BASELINE_QUERIES``, ``BASELINE_QUERIES_PADDED``) and is not scored for quality.

Targets: hybrid recall@5 >= 0.90 and above both dense and sparse recall@5; Edge retrieval p95 <= 5 ms
at the padded size. A target that is not met is reported with ``met: false``.
"""

from __future__ import annotations

import gc
import json
import random
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from maestro.bench.report import BenchReport, percentile
from maestro.core.errors import ConfigurationError, NotFound
from maestro.core.settings import Settings
from maestro.retrieval.chunking import chunk_id
from maestro.retrieval.embeddings import Embedder, EmbeddingCache, MiniLMEmbedder
from maestro.retrieval.ingest import Ingestor, IngestReport
from maestro.retrieval.search import Retriever, SearchMode, SearchOptions
from maestro.retrieval.sparse import SparseEncoder
from maestro.retrieval.stores.edge import QdrantEdgeStore
from maestro.retrieval.stores.server import QdrantServerStore
from maestro.retrieval.types import ChunkRecord, Hit, SparseVector, StoredChunk, VectorStore

__all__ = ["DEFAULT_CORPUS", "INSTALL_SCRIPT", "Question", "bench_rag", "corpus_files", "load_questions"]

DEFAULT_CORPUS = Path("/usr/share/doc/python3.11/html/_sources")
INSTALL_SCRIPT = "scripts/python-docs.sh"
COLLECTION = "python311"
TENANT = "bench"
PAD_TO = 50_000
QUICK_PAD_TO = 5_000
QUICK_FILES = 20
BASELINE_QUERIES = 50  # qdrant-client local mode searches by brute force in Python: ~0.5 s a query at 5k
BASELINE_QUERIES_PADDED = 15  # ... and ~5 s at 50k
EDGE_PASSES = 3  # Edge answers the retrieval-only latency queries this many times over (p95 needs samples)
WARM_UP_QUERIES = 5
K = 5
MRR_DEPTH = 10
MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+")


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    source: str


@dataclass(frozen=True, slots=True)
class _Query:
    question: Question
    dense: tuple[float, ...]
    sparse: SparseVector


def load_questions(path: Path | None = None) -> list[Question]:
    """The question set: JSON lines with ``id``, ``question`` and ``source`` (default: the packaged one)."""
    if path is None:
        where = "maestro/evals/datasets/rag_python311.jsonl"
        try:
            text = (
                resources.files("maestro.evals").joinpath("datasets/rag_python311.jsonl").read_text("utf-8")
            )
        except OSError as exc:
            raise ConfigurationError(
                f"the packaged question set {where} is missing from this install ({exc}): run from a "
                "repository checkout or pass --questions FILE"
            ) from exc
    elif not path.is_file():
        raise NotFound(f"question file not found at {path}: pass a JSON-lines file or leave the default")
    else:
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        questions = [Question(str(r["id"]), str(r["question"]), str(r["source"])) for r in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{where} is not a question file (JSON lines with id, question and source): {exc!r}"
        ) from exc
    if not questions:
        raise ConfigurationError(f"{where} holds no questions")
    return questions


def corpus_files(corpus: Path) -> list[Path]:
    """``corpus/library/*.rst.txt``, sorted; ``NotFound`` naming the install script when there are none."""
    files = sorted((corpus / "library").glob("*.rst.txt"))
    if not files:
        raise NotFound(
            f"the RAG benchmark corpus is missing: no library/*.rst.txt under {corpus}. Install Debian's "
            f"python3.11-doc with `bash {INSTALL_SCRIPT}` (or `make bench-rag`), or pass --corpus DIR",
            corpus=str(corpus),
        )
    return files


def _select(
    files: list[Path], questions: list[Question], *, corpus: Path, quick: bool
) -> tuple[list[Path], list[Question]]:
    """All files and questions, or (``quick``) the first ``QUICK_FILES`` answering files and their questions.

    Quick mode keeps only files some question is answered by, so every kept question can be found.
    """
    if not quick:
        return files, questions
    present = {f.relative_to(corpus).as_posix(): f for f in files}
    chosen = sorted({q.source for q in questions} & set(present))[:QUICK_FILES]
    if not chosen:
        raise ConfigurationError(f"no question's source is among the {len(files)} files under {corpus}")
    return [present[s] for s in chosen], [q for q in questions if q.source in set(chosen)]


class _Recorder:
    """A ``VectorStore`` that forwards to another and keeps what was upserted (the padding's templates)."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.upserted: list[StoredChunk] = []

    def ensure_collection(self, collection: str, *, dim: int) -> None:
        self.inner.ensure_collection(collection, dim=dim)

    def upsert(self, collection: str, chunks: Sequence[StoredChunk]) -> None:
        self.inner.upsert(collection, chunks)
        self.upserted.extend(chunks)

    def chunk_ids(self, collection: str, *, tenant: str, source: str) -> set[str]:
        return self.inner.chunk_ids(collection, tenant=tenant, source=source)

    def sources(self, collection: str, *, tenant: str) -> set[str]:
        return self.inner.sources(collection, tenant=tenant)

    def delete(self, collection: str, *, tenant: str, chunk_ids: Sequence[str]) -> None:
        self.inner.delete(collection, tenant=tenant, chunk_ids=chunk_ids)

    def search(self, collection: str, *, tenant: str, **kwargs: Any) -> list[Hit]:
        return self.inner.search(collection, tenant=tenant, **kwargs)

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Run:
    """What the phases share: the progress display, the embedder, the files and questions, the report."""

    bar: Progress
    embedder: Embedder
    files: list[Path]
    corpus: Path
    questions: list[Question]
    report: BenchReport = field(default_factory=lambda: BenchReport("rag"))

    def ingest(self, store: VectorStore, label: str) -> IngestReport:
        task = self.bar.add_task(label, total=len(self.files))

        def advance(done: int, total: int, source: str) -> None:
            self.bar.update(task, completed=done, total=total)

        try:
            return Ingestor(store, self.embedder).ingest(
                self.files,
                collection=COLLECTION,
                tenant=TENANT,
                root=self.corpus,
                prune=False,
                progress=advance,
            )
        finally:
            self.bar.remove_task(task)

    def timed(self, label: str, action: Callable[[], object]) -> float:
        task = self.bar.add_task(label, total=None)
        started = time.perf_counter()
        try:
            action()
        finally:
            self.bar.remove_task(task)
        return time.perf_counter() - started

    def each(self, label: str, items: Sequence[Any]) -> Iterator[Any]:
        task = self.bar.add_task(label, total=len(items))
        try:
            for item in items:
                yield item
                self.bar.advance(task)
        finally:
            self.bar.remove_task(task)


def _quality(run: _Run, store: VectorStore, queries: Sequence[_Query]) -> dict[str, float]:
    """Recall@1, recall@5 and MRR@10 of the right source for each search mode."""
    totals = {f"{mode}.{name}": 0.0 for mode in MODES for name in ("recall@1", f"recall@{K}", "mrr@10")}
    for query in run.each("quality (Edge)", queries):
        for mode in MODES:
            dense = query.dense if mode != "sparse" else None
            sparse = query.sparse if mode != "dense" else None
            top_k = store.search(COLLECTION, tenant=TENANT, dense=dense, sparse=sparse, limit=K)
            deep = store.search(COLLECTION, tenant=TENANT, dense=dense, sparse=sparse, limit=MRR_DEPTH)
            right = query.question.source
            totals[f"{mode}.recall@1"] += bool(top_k) and top_k[0].chunk.source == right
            totals[f"{mode}.recall@{K}"] += any(h.chunk.source == right for h in top_k)
            rank = next((i for i, h in enumerate(deep, start=1) if h.chunk.source == right), None)
            totals[f"{mode}.mrr@10"] += 1.0 / rank if rank else 0.0
    return {key: value / len(queries) for key, value in totals.items()}


@dataclass(frozen=True, slots=True)
class _Side:
    """One store under test: where its numbers go, how many queries and passes it answers."""

    store: VectorStore
    label: str
    out: dict[str, float]
    queries: int
    passes: int = 1
    warm_up: int = WARM_UP_QUERIES


def _spread(items: Sequence[_Query], n: int) -> list[_Query]:
    """``n`` items evenly spread over ``items`` (all of them when there are no more than ``n``)."""
    if len(items) <= n:
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def _latency(run: _Run, side: _Side, queries: Sequence[_Query], *, prefix: str) -> None:
    """Hybrid k=5 latency of one store: retrieval only (``passes`` times over the queries) and with query
    embedding (once over them). Stores are measured one after the other, never interleaved, so one
    store's garbage and caches do not land in the other's numbers."""
    chosen = _spread(queries, side.queries)
    options = SearchOptions(k=K, mode="hybrid")
    retriever = Retriever(side.store, run.embedder)
    for query in chosen[: side.warm_up]:
        side.store.search(COLLECTION, tenant=TENANT, dense=query.dense, sparse=query.sparse, limit=K)
        retriever.search(COLLECTION, query.question.question, tenant=TENANT, options=options)
    gc.collect()
    retrieval: list[float] = []
    for query in run.each(f"{prefix} latency, retrieval ({side.label})", chosen * side.passes):
        started = time.perf_counter()
        side.store.search(COLLECTION, tenant=TENANT, dense=query.dense, sparse=query.sparse, limit=K)
        retrieval.append((time.perf_counter() - started) * 1000)
    embedded: list[float] = []
    for query in run.each(f"{prefix} latency, with embedding ({side.label})", chosen):
        started = time.perf_counter()
        retriever.search(COLLECTION, query.question.question, tenant=TENANT, options=options)
        embedded.append((time.perf_counter() - started) * 1000)
    for kind, values in (("retrieval", retrieval), ("with_embedding", embedded)):
        side.out[f"{prefix}.{kind}_p50_ms"] = percentile(values, 50)
        side.out[f"{prefix}.{kind}_p95_ms"] = percentile(values, 95)
        side.out[f"{prefix}.{kind}_queries"] = float(len(values))


def synthetic_chunks(templates: Sequence[StoredChunk], count: int, *, seed: int = 0) -> Iterator[StoredChunk]:
    """``count`` synthetic chunks made from ``templates`` (see the module docstring); deterministic."""
    import numpy as np

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    for index in range(count):
        template = templates[index % len(templates)]
        record = template.record
        sentences = _SENTENCE_END.split(record.text)
        rng.shuffle(sentences)
        text = " ".join(sentences)
        source = f"synthetic/{record.source}"
        vector = np.asarray(template.dense) + noise.normal(0.0, 0.03, len(template.dense))
        vector /= np.linalg.norm(vector)
        kept = [
            (i, v)
            for i, v in zip(template.sparse.indices, template.sparse.values, strict=True)
            if rng.random() >= 0.2
        ]
        yield StoredChunk(
            record=ChunkRecord(
                chunk_id=chunk_id(source, f"{index}\n{text}"),
                tenant=record.tenant,
                collection=record.collection,
                source=source,
                text=text,
                start=0,
                end=len(text),
                section=record.section,
                extra={"kind": "synthetic"},
            ),
            dense=tuple(float(x) for x in vector),
            sparse=SparseVector(indices=tuple(i for i, _ in kept), values=tuple(v for _, v in kept)),
        )


def _pad(run: _Run, sides: Sequence[_Side], templates: Sequence[StoredChunk], count: int) -> None:
    """Upsert ``count`` synthetic chunks into every store in batches; time each store's upserts."""
    batch: list[StoredChunk] = []
    seconds = [0.0] * len(sides)
    task = run.bar.add_task("padding with synthetic chunks", total=count)

    def flush() -> None:
        for index, side in enumerate(sides):
            started = time.perf_counter()
            side.store.upsert(COLLECTION, batch)
            seconds[index] += time.perf_counter() - started
        run.bar.advance(task, len(batch))
        batch.clear()

    for chunk in synthetic_chunks(templates, count):
        batch.append(chunk)
        if len(batch) >= 2_000:
            flush()
    if batch:
        flush()
    run.bar.remove_task(task)
    for side, spent in zip(sides, seconds, strict=True):
        if count:
            side.out["padded.upsert_chunks_per_s"] = count / spent


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def bench_rag(
    settings: Settings,
    *,
    quick: bool = False,
    corpus: Path | None = None,
    questions_path: Path | None = None,
    pad_to: int | None = None,
) -> BenchReport:
    """Run the benchmark in a temporary data dir; ``quick``: 20 files and their questions, 5k padding."""
    del settings  # everything runs in its own temporary data dir; kept for the common signature
    corpus = corpus or DEFAULT_CORPUS
    files, questions = _select(
        corpus_files(corpus), load_questions(questions_path), corpus=corpus, quick=quick
    )
    pad_to = pad_to or (QUICK_PAD_TO if quick else PAD_TO)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="maestro-bench-rag-") as tmp, _progress() as bar:
        root = Path(tmp)
        embedder = MiniLMEmbedder(cache=EmbeddingCache(root / "embeddings.sqlite"))
        run = _Run(bar, embedder, files, corpus, questions)
        run.report.metrics["minilm_load_s"] = run.timed(
            "loading MiniLM", lambda: embedder.embed_query("warm up")
        )
        edge = QdrantEdgeStore(root / "edge", optimize_after=10 * pad_to)
        local = QdrantServerStore.local(root / "qdrant-local")
        try:
            _measure(run, edge, local, root, pad_to)
        finally:
            edge.close()
            local.close()
    run.report.metrics["bench_s"] = time.perf_counter() - started
    return run.report


def _measure(run: _Run, edge: QdrantEdgeStore, local: QdrantServerStore, root: Path, pad_to: int) -> None:
    report = run.report
    recorder = _Recorder(edge)
    cold = run.ingest(recorder, "ingest (cold cache, Edge)")
    chunks = len(recorder.upserted)
    report.metrics.update(
        {
            "library_files": float(cold.count("indexed")),
            "library_files_skipped": float(cold.count("skipped")),
            "library_chunks": float(chunks),
            "questions": float(len(run.questions)),
            "ingest_no_pii_cold_s": cold.seconds,
            "ingest_no_pii_cold_chunks_per_s": chunks / cold.seconds,
        }
    )
    report.metrics["edge_index_build_library_s"] = run.timed("HNSW build", lambda: edge.optimize(COLLECTION))
    with QdrantEdgeStore(root / "edge-warm") as second:
        warm = run.ingest(second, "ingest (warm cache, Edge)")
    report.metrics["ingest_no_pii_warm_chunks_per_s"] = chunks / warm.seconds
    warm_local = run.ingest(local, "ingest (warm cache, qdrant-client local)")
    report.baseline["ingest_no_pii_warm_chunks_per_s"] = chunks / warm_local.seconds

    sparse = SparseEncoder()
    queries = [
        _Query(q, run.embedder.embed_query(q.question), sparse.encode_query(q.question))
        for q in run.each("embedding questions", run.questions)
    ]
    report.metrics.update(_quality(run, edge, queries))
    edge_side = _Side(edge, "Edge", report.metrics, queries=len(queries), passes=EDGE_PASSES)
    local_side = _Side(local, "qdrant-client local", report.baseline, queries=BASELINE_QUERIES, warm_up=1)
    for side in (edge_side, local_side):
        _latency(run, side, queries, prefix="library")

    with warnings.catch_warnings():  # local mode warns past 20,000 points: that is the comparison
        warnings.filterwarnings("ignore", message="Local mode is not recommended")
        _pad(run, (edge_side, local_side), recorder.upserted, max(0, pad_to - chunks))
        report.metrics["padded.chunks"] = float(max(pad_to, chunks))
        report.metrics["edge_index_build_padded_s"] = run.timed(
            "HNSW build", lambda: edge.optimize(COLLECTION)
        )
        local_side = replace(local_side, queries=BASELINE_QUERIES_PADDED)
        for side in (edge_side, local_side):
            _latency(run, side, queries, prefix="padded")

    hybrid = report.metrics[f"hybrid.recall@{K}"]
    report.at_least(f"hybrid.recall@{K}", hybrid, 0.90)
    for other in ("dense", "sparse"):
        margin = hybrid - report.metrics[f"{other}.recall@{K}"]
        report.at_least(f"hybrid_minus_{other}.recall@{K}", margin, 0.0, strict=True)
    report.target("padded.retrieval_p95_ms", report.metrics["padded.retrieval_p95_ms"], at_most=5.0)
