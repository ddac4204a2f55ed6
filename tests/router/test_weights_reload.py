"""A router reads a changed weights file without a restart, and never a broken one."""

from __future__ import annotations

import os
from pathlib import Path

from maestro.router.weights import WeightsFile, parse_weights

GOOD = """
version: "{version}"
prior: 0.5
task_classes:
  chat:
    floor: 0.5
    models:
      a: {{quality: {quality}, samples: 20, interval: [0.1, 0.99]}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a distinct mtime even within the filesystem's resolution


def test_a_changed_file_is_reloaded_after_the_check_interval_and_a_broken_one_is_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "weights.yaml"
    _write(path, GOOD.format(version="v1", quality=0.4), 1_000_000_000)
    clock = Clock()
    source = WeightsFile(path, parse_weights(path.read_text()), known_models={"a"}, check_s=5, clock=clock)

    _write(path, GOOD.format(version="v2", quality=0.9), 2_000_000_000)
    assert source.current().version == "v1"  # not looked at before the interval passes
    clock.now = 6
    assert source.current().version == "v2" and source.current().estimate("chat", "a").quality == 0.9

    _write(path, "version: [half-written", 3_000_000_000)
    clock.now = 12
    assert source.current().version == "v2"  # a file that does not load is ignored
    _write(path, GOOD.format(version="v3", quality=0.5).replace("a:", "unknown-model:"), 4_000_000_000)
    clock.now = 18
    assert source.current().version == "v2"  # nor one naming a model the catalog does not have
    path.unlink()
    clock.now = 24
    assert source.current().version == "v2"  # nor a missing one
    _write(path, GOOD.format(version="v4", quality=0.6), 5_000_000_000)
    clock.now = 30
    assert source.current().version == "v4"
