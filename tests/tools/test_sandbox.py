"""The sandbox's API, run with real processes in every mode this machine supports.

Each mode is forced in turn (``SandboxConfig(modes=(mode,))``); a mode is skipped only when it cannot
work here, with the probe's reason. Attack tests (RELIABILITY #14-16) are in test_sandbox_escape.py.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from maestro.tools.sandbox import (
    Sandbox,
    SandboxConfig,
    SandboxLimits,
    SandboxUnavailable,
    mode_problem,
    run_pytest,
)

MODES = ["bwrap", "unshare"]
FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the venv's plugins cost seconds per start


@pytest.fixture(params=MODES)
def box(request: pytest.FixtureRequest) -> Sandbox:
    problem = mode_problem(request.param)
    if problem is not None:
        pytest.skip(f"sandbox mode {request.param} unavailable: {problem}")
    return Sandbox(SandboxConfig(modes=(request.param,)))


def _alive(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_runs_in_the_forced_mode_and_reports_output(box: Sandbox, tmp_path: Path) -> None:
    result = box.run(["sh", "-c", "echo out; echo err >&2; exit 3"], workdir=tmp_path, timeout_s=20)
    assert result.mode == box.config.modes[0]
    assert (result.exit_code, result.status, result.killed_by) == (3, "failed", None)
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.duration_s < 10


def test_project_python_and_venv_are_importable(box: Sandbox, tmp_path: Path) -> None:
    code = "import sys, pytest, pydantic; print(sys.prefix)"
    result = box.run([str(box.python), "-c", code], workdir=tmp_path, timeout_s=30)
    assert result.status == "passed", result.stderr
    assert result.stdout.strip() == sys.prefix


def test_worktree_is_writable_and_changes_persist(box: Sandbox, tmp_path: Path) -> None:
    result = box.run(
        ["sh", "-c", "echo hi > made.txt && mkdir -p d && touch d/x"], workdir=tmp_path, timeout_s=20
    )
    assert result.status == "passed", result.stderr
    assert (tmp_path / "made.txt").read_text() == "hi\n"
    assert (tmp_path / "d" / "x").exists()


def test_private_tmp_and_home(box: Sandbox, tmp_path: Path) -> None:
    script = "echo $HOME; touch $HOME/f /tmp/g && ls -A /tmp | sort | tr '\\n' ' '"
    result = box.run(["sh", "-c", script], workdir=tmp_path, timeout_s=20)
    assert result.status == "passed", result.stderr
    home, listing = result.stdout.splitlines()
    assert home == "/tmp/home"
    assert "g" in listing.split()
    assert not Path("/tmp/g").exists()


def test_output_tail_is_capped(tmp_path: Path) -> None:
    box = Sandbox(limits=SandboxLimits(output_bytes=1000))
    result = box.run([sys.executable, "-c", "print('x' * 5000 + 'END')"], workdir=tmp_path, timeout_s=20)
    assert result.truncated
    assert len(result.stdout) == 1000
    assert result.stdout.endswith("END\n")


def test_timeout_kills_the_whole_tree_including_detached_grandchildren(box: Sandbox, tmp_path: Path) -> None:
    marker = f"sbx-grandchild-{uuid.uuid4().hex}"
    code = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"]
        subprocess.Popen(sleeper, start_new_session=True)          # own session
        if os.fork() == 0:                                          # double fork: orphaned grandchild
            os.setsid()
            subprocess.Popen(sleeper)
            os._exit(0)
        subprocess.Popen(sleeper)
        print("spawned", flush=True)
        time.sleep(300)
        """
    )
    start = time.monotonic()
    result = box.run([str(box.python), "-c", code, marker], workdir=tmp_path, timeout_s=1.5)
    assert time.monotonic() - start < 10
    assert (result.status, result.killed_by) == ("timeout", "timeout")
    assert "spawned" in result.stdout
    assert _alive(marker) == []


def test_pytest_results_per_test(box: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "test_generated.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.fixture
            def broken():
                raise RuntimeError("fixture broke")

            def test_ok():
                assert 1 + 1 == 2

            def test_bad():
                assert 1 + 1 == 3, "arithmetic"

            def test_err(broken):
                pass

            @pytest.mark.skip(reason="not today")
            def test_skip():
                pass
            """
        )
    )
    result = run_pytest(tmp_path, ["-q"], sandbox=box, timeout_s=60, env_extra=FAST_PYTEST)
    outcomes = {t.name: t.outcome for t in result.tests}
    assert outcomes == {
        "test_ok": "passed",
        "test_bad": "failed",
        "test_err": "error",
        "test_skip": "skipped",
    }
    assert result.status == "errored"
    bad = next(t for t in result.tests if t.name == "test_bad")
    assert "arithmetic" in bad.message
    assert bad.file == "test_generated.py"
    assert bad.nodeid == "test_generated.py::test_bad"
    assert not (tmp_path / ".pytest_cache").exists()
    assert not list(tmp_path.glob("*.xml"))


def test_pytest_passing_and_failing_runs(box: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text("def test_a():\n    assert True\n")
    passed = run_pytest(tmp_path, [], sandbox=box, timeout_s=60, env_extra=FAST_PYTEST)
    assert (passed.status, passed.exit_code, passed.count("passed")) == ("passed", 0, 1)
    (tmp_path / "test_b.py").write_text("def test_b():\n    assert False\n")
    failed = run_pytest(tmp_path, [], sandbox=box, timeout_s=60, env_extra=FAST_PYTEST)
    assert (failed.status, failed.exit_code, failed.count("failed")) == ("failed", 1, 1)


def test_refuses_to_run_without_a_sandbox(tmp_path: Path) -> None:
    box = Sandbox(SandboxConfig(modes=()))
    with pytest.raises(SandboxUnavailable, match="Untrusted code is not run unsandboxed"):
        box.run(["true"], workdir=tmp_path, timeout_s=5)
    assert not (tmp_path / "ran").exists()


def test_unsandboxed_only_when_explicitly_allowed(tmp_path: Path) -> None:
    box = Sandbox(SandboxConfig(modes=(), allow_unsandboxed=True))
    result = box.run(["sh", "-c", "touch ran"], workdir=tmp_path, timeout_s=5)
    assert (result.mode, result.status) == ("none", "passed")
    assert (tmp_path / "ran").exists()
