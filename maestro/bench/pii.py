"""``maestro bench pii``: Maestro's PII guard against stock Presidio on labelled PII sentences.

Data: presidio-research's synthetic dataset (``synth_dataset_v2.json``: a JSON list of
``{"full_text", "spans": [{"entity_type", "entity_value", "start_position", "end_position"}], ...}``),
by default at ``../shared/data/pii/`` next to the repository. Plus the secrets fixture
``tests/tools/data/secrets.jsonl`` (real-format fake secrets, and look-alikes that must not fire).

Both sides run in the same process on the same texts with the same spaCy model (``en_core_web_sm``):

* ``metrics``: Maestro's :class:`~maestro.tools.pii.PIIGuard` (all entity types enabled, so the types
  outside the default set are reported too; the default types win every overlap, so enabling the others
  does not change their numbers).
* ``metrics`` ``*_patterns_only``: the same guard with ``ner=False`` (no spaCy model), for callers that
  trade names for speed.
* ``baseline``: Presidio's ``AnalyzerEngine`` with only its predefined recognizers, at its stock score
  threshold (0) and, for a fairer comparison, at Maestro's threshold (0.4): keys ending ``_thr04``.

Label mapping (dataset -> Maestro type): PERSON, EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN,
IBAN_CODE, IP_ADDRESS, US_DRIVER_LICENSE, DATE_TIME, ORGANIZATION, NRP as themselves; STREET_ADDRESS and
GPE -> LOCATION; DOMAIN_NAME -> URL. TITLE, AGE and ZIP_CODE have no Maestro type and are not scored.

Scoring, per type, span level with overlap: a gold span is *found* when predicted spans of the same type
cover at least 50% of its characters; a predicted span is *correct* when gold spans of the same type
cover at least 50% of its characters. Precision = correct / predicted, recall = found / gold. The
``*_default`` figures are micro-averaged over the types in Maestro's default redaction set
(:data:`~maestro.tools.pii.DEFAULT_ENTITIES`); other types are reported per type only.

Targets: recall_default >= 0.95, precision_default >= 0.90, F1 above the better of the two Presidio
variants, recall 1.0 on the secrets fixture, no finding on its look-alikes. A target that is not met is
reported with ``met: false``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from maestro.bench.report import BenchReport
from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.tools.pii import ALL_ENTITIES, DEFAULT_ENTITIES, PIIGuard

__all__ = ["DEFAULT_DATA_PATH", "LABEL_MAP", "SECRETS_FIXTURE", "bench_pii", "load_dataset", "score"]

DEFAULT_DATA_PATH = Path(__file__).resolve().parents[3] / "shared/data/pii/synth_dataset_v2.json"
SECRETS_FIXTURE = Path(__file__).resolve().parents[2] / "tests/tools/data/secrets.jsonl"
QUICK_SAMPLES = 300
SPEED_SAMPLES = 300

LABEL_MAP: dict[str, str] = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN_CODE",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "STREET_ADDRESS": "LOCATION",
    "GPE": "LOCATION",
    "DATE_TIME": "DATE_TIME",
    "ORGANIZATION": "ORGANIZATION",
    "NRP": "NRP",
    "DOMAIN_NAME": "URL",
}

Prediction = tuple[str, int, int]  # (type, start, end)


@dataclass(frozen=True)
class Sample:
    """One labelled text: gold spans already mapped to Maestro types."""

    text: str
    gold: tuple[Prediction, ...]


def load_dataset(path: Path) -> list[Sample]:
    """Read presidio-research's JSON format; a clear error if the file is missing or malformed."""
    if not path.is_file():
        raise ConfigurationError(
            f"PII benchmark data not found at {path}: put presidio-research's synth_dataset_v2.json there "
            "(shared/data/pii/ next to the repository) or pass data_path"
        )
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        samples = [
            Sample(
                row["full_text"],
                tuple(
                    (LABEL_MAP[s["entity_type"]], int(s["start_position"]), int(s["end_position"]))
                    for s in row["spans"]
                    if s["entity_type"] in LABEL_MAP
                ),
            )
            for row in rows
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not in presidio-research's format (a list of {{full_text, spans: [{{entity_type, "
            f"start_position, end_position}}]}}): {exc!r}"
        ) from exc
    return samples


def _coverage(start: int, end: int, others: Iterable[tuple[int, int]]) -> float:
    covered: set[int] = set()
    for s, e in others:
        covered.update(range(max(start, s), min(end, e)))
    return len(covered) / max(1, end - start)


def score(
    gold: Sequence[Sequence[Prediction]], predicted: Sequence[Sequence[Prediction]]
) -> dict[str, Counter[str]]:
    """Per-type counts ``gold``, ``found``, ``predicted``, ``correct`` under the 50%-overlap rule."""
    counts: dict[str, Counter[str]] = {}
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        by_type_gold: dict[str, list[tuple[int, int]]] = {}
        by_type_pred: dict[str, list[tuple[int, int]]] = {}
        for t, s, e in gold_spans:
            by_type_gold.setdefault(t, []).append((s, e))
        for t, s, e in pred_spans:
            by_type_pred.setdefault(t, []).append((s, e))
        for t, spans in by_type_gold.items():
            c = counts.setdefault(t, Counter())
            for s, e in spans:
                c["gold"] += 1
                c["found"] += _coverage(s, e, by_type_pred.get(t, [])) >= 0.5
        for t, spans in by_type_pred.items():
            c = counts.setdefault(t, Counter())
            for s, e in spans:
                c["predicted"] += 1
                c["correct"] += _coverage(s, e, by_type_gold.get(t, [])) >= 0.5
    return counts


def _prf(c: Counter[str]) -> tuple[float, float, float]:
    precision = c["correct"] / c["predicted"] if c["predicted"] else 0.0
    recall = c["found"] / c["gold"] if c["gold"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _summarise(counts: dict[str, Counter[str]], out: dict[str, float], suffix: str = "") -> float:
    """Write per-type and default-set figures into ``out``; return the default-set F1."""
    total: Counter[str] = Counter()
    for entity in sorted(counts):
        c = counts[entity]
        if entity in DEFAULT_ENTITIES:
            total.update(c)
        if not suffix:
            p, r, f = _prf(c)
            out.update({f"{entity}.precision": p, f"{entity}.recall": r, f"{entity}.f1": f})
            out[f"{entity}.support"] = float(c["gold"])
    p, r, f = _prf(total)
    out.update({f"precision_default{suffix}": p, f"recall_default{suffix}": r, f"f1_default{suffix}": f})
    return f


def _kb(texts: Iterable[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1024


def _timed(
    fn: Callable[[str], list[Prediction]], texts: Sequence[str]
) -> tuple[list[list[Prediction]], float]:
    started = time.perf_counter()
    out = [fn(t) for t in texts]
    return out, _kb(texts) / max(time.perf_counter() - started, 1e-9)


def _load_secrets_fixture(path: Path) -> tuple[list[Sample], list[str]]:
    if not path.is_file():
        raise ConfigurationError(
            f"secrets fixture not found at {path}: run the benchmark from a repository checkout"
        )
    secrets: list[Sample] = []
    lookalikes: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row["kind"] == "lookalike":
            lookalikes.append(row["text"])
            continue
        gold = []
        for item in row["secrets"]:
            start = row["text"].index(item["value"])
            gold.append((item["type"], start, start + len(item["value"])))
        secrets.append(Sample(row["text"], tuple(gold)))
    return secrets, lookalikes


def bench_pii(settings: Settings, *, quick: bool = False, data_path: Path | None = None) -> BenchReport:
    """Run the benchmark; ``quick`` scores an evenly spread slice of 300 samples instead of all."""
    del settings  # the guard needs no settings; kept for the common benchmark signature
    samples = load_dataset(data_path or DEFAULT_DATA_PATH)
    if quick and len(samples) > QUICK_SAMPLES:
        samples = samples[:: len(samples) // QUICK_SAMPLES][:QUICK_SAMPLES]
    secrets, lookalikes = _load_secrets_fixture(SECRETS_FIXTURE)
    texts = [s.text for s in samples]
    gold = [list(s.gold) for s in samples]

    from maestro.tools.pii.analyzer import build_presidio_analyzer

    guard = PIIGuard(entities=ALL_ENTITIES)
    guard.warm_up()
    presidio = build_presidio_analyzer()

    def maestro_fn(text: str) -> list[Prediction]:
        return [(f.type, f.start, f.end) for f in guard.scan(text)]

    def presidio_fn(text: str, threshold: float = 0.0) -> list[Prediction]:
        results = presidio.analyze(text, language="en")
        return [(r.entity_type, r.start, r.end) for r in results if r.score >= threshold]

    report = BenchReport("pii")
    maestro_pred, kb_all = _timed(maestro_fn, texts)
    presidio_pred, kb_presidio = _timed(presidio_fn, texts)
    presidio_pred_04 = [presidio_fn(t, 0.4) for t in texts]

    maestro_f1 = _summarise(score(gold, maestro_pred), report.metrics)
    stock_f1 = _summarise(score(gold, presidio_pred), report.baseline)
    thr_f1 = _summarise(score(gold, presidio_pred_04), report.baseline, suffix="_thr04")

    speed_texts = texts[:SPEED_SAMPLES]

    def default_guard_fn(text: str) -> list[Prediction]:
        return [(f.type, f.start, f.end) for f in guard.scan(text, entities=DEFAULT_ENTITIES)]

    _, kb_default = _timed(default_guard_fn, speed_texts)
    started = time.perf_counter()
    guard.scan_many(speed_texts, entities=DEFAULT_ENTITIES)
    kb_batch = _kb(speed_texts) / max(time.perf_counter() - started, 1e-9)
    patterns_only = PIIGuard(ner=False)

    def patterns_fn(text: str) -> list[Prediction]:
        return [(f.type, f.start, f.end) for f in patterns_only.scan(text)]

    patterns_pred, kb_patterns = _timed(patterns_fn, texts)
    patterns: dict[str, float] = {}
    _summarise(score(gold, patterns_pred), patterns, suffix="_patterns_only")
    report.metrics.update(
        {
            "samples": float(len(samples)),
            "kb_per_s": kb_default,
            "kb_per_s_batch": kb_batch,
            "kb_per_s_all_types": kb_all,
            "kb_per_s_patterns_only": kb_patterns,
            **patterns,
        }
    )
    report.baseline["kb_per_s"] = kb_presidio

    secret_counts = score([list(s.gold) for s in secrets], [maestro_fn(s.text) for s in secrets])
    secrets_found = sum(c["found"] for c in secret_counts.values())
    secrets_total = sum(c["gold"] for c in secret_counts.values())
    secrets_recall = secrets_found / secrets_total if secrets_total else 0.0
    lookalike_fp = sum(len(guard.scan(t, entities=DEFAULT_ENTITIES)) for t in lookalikes)
    presidio_default = sorted(DEFAULT_ENTITIES & set(presidio.get_supported_entities()))
    presidio_secret_counts = score([list(s.gold) for s in secrets], [presidio_fn(s.text) for s in secrets])
    report.metrics.update(
        {"secrets_recall": secrets_recall, "lookalike_false_positives": float(lookalike_fp)}
    )
    report.baseline.update(
        {
            "secrets_recall": sum(c["found"] for c in presidio_secret_counts.values())
            / max(1, secrets_total),
            "lookalike_false_positives": float(
                sum(len(presidio.analyze(t, language="en", entities=presidio_default)) for t in lookalikes)
            ),
        }
    )

    report.at_least("recall_default", report.metrics["recall_default"], 0.95)
    report.at_least("precision_default", report.metrics["precision_default"], 0.90)
    report.at_least("f1_default_minus_best_presidio", maestro_f1 - max(stock_f1, thr_f1), 0.0, strict=True)
    report.at_least("secrets_recall", secrets_recall, 1.0)
    report.target("lookalike_false_positives", float(lookalike_fp), at_most=0)
    return report
