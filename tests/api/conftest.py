"""The ``cli`` fixture: the real ``maestro`` entry point in a subprocess, isolated in the test's tmp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest

MAESTRO = str(Path(sys.executable).with_name("maestro"))


class MaestroCli(Protocol):
    def __call__(
        self, args: list[str], cwd: Path, *, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def _run(
    args: list[str], cwd: Path, *, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``maestro ARGS`` in ``cwd`` with ``MAESTRO_DATA_DIR=cwd/var``; no MAESTRO_* or provider keys leak."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_") and not k.endswith("_API_KEY")
    }
    environment["MAESTRO_DATA_DIR"] = str(cwd / "var")
    environment.update(env or {})
    return subprocess.run(
        [MAESTRO, *args], input=stdin, capture_output=True, text=True, env=environment, cwd=cwd, timeout=600
    )


@pytest.fixture
def cli() -> MaestroCli:
    return _run
