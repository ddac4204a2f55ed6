"""``maestro bench pii``: a quick run on a small slice of the real dataset, and the scoring rule."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from maestro.bench.pii import DEFAULT_DATA_PATH, bench_pii, load_dataset, score
from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings

TARGETS = {
    "recall_default",
    "precision_default",
    "f1_default_minus_best_presidio",
    "secrets_recall",
    "lookalike_false_positives",
}


@pytest.fixture
def data_slice(tmp_path: Path) -> Path:
    if not DEFAULT_DATA_PATH.is_file():
        pytest.fail(f"the PII dataset is missing at {DEFAULT_DATA_PATH} (shared/data/pii/)", pytrace=False)
    rows = json.loads(DEFAULT_DATA_PATH.read_text(encoding="utf-8"))
    path = tmp_path / "slice.json"
    path.write_text(json.dumps(rows[:60]), encoding="utf-8")
    return path


def test_quick_run_reports_both_sides_and_every_target(settings: Settings, data_slice: Path) -> None:
    report = bench_pii(settings, quick=True, data_path=data_slice).to_dict()
    assert report["bench"] == "pii"
    assert set(report) == {"bench", "machine", "metrics", "baseline", "targets"}
    metrics, baseline = report["metrics"], report["baseline"]
    for key in ("precision_default", "recall_default", "f1_default", "kb_per_s"):
        assert key in metrics and key in baseline
        assert metrics[key] >= 0
    assert {"kb_per_s_batch", "kb_per_s_all_types", "secrets_recall", "lookalike_false_positives"} <= set(
        metrics
    )
    assert {"f1_default_thr04", "secrets_recall"} <= set(baseline)
    assert metrics["samples"] == 60
    assert "PERSON.recall" in metrics and "PERSON.recall" in baseline
    assert set(report["targets"]) == TARGETS
    for target in report["targets"].values():
        assert set(target) == {"value", "target", "met"}
        assert isinstance(target["met"], bool)
    assert report["targets"]["secrets_recall"]["met"] is True
    assert report["targets"]["lookalike_false_positives"]["met"] is True
    json.dumps(report)


def test_missing_dataset_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="synth_dataset_v2.json"):
        bench_pii(settings, data_path=tmp_path / "nowhere.json")


def test_malformed_dataset_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"text": "no spans"}]')
    with pytest.raises(ConfigurationError, match="presidio-research's format"):
        load_dataset(path)


def test_scoring_counts_half_overlap_of_the_same_type() -> None:
    gold = [[("PERSON", 0, 10), ("EMAIL_ADDRESS", 20, 30)]]
    predicted = [[("PERSON", 0, 5), ("PERSON", 40, 45), ("PHONE_NUMBER", 20, 30)]]
    counts = score(gold, predicted)
    assert counts["PERSON"] == Counter(gold=1, found=1, predicted=2, correct=1)
    assert counts["EMAIL_ADDRESS"] == Counter(gold=1)
    assert counts["PHONE_NUMBER"] == Counter(predicted=1)
    assert score([[("PERSON", 0, 10)]], [[("PERSON", 0, 4)]])["PERSON"]["found"] == 0
