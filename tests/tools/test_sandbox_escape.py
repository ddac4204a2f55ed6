"""Attacks on the sandbox with real processes (RELIABILITY #14 network, #15 resources, #16 secrets).

Every test runs in each mode this machine supports, with small limits (2 s CPU, 256 MB address space,
10 MB files, 64 processes) so the whole file stays within seconds, and checks the host afterwards.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from maestro.tools.sandbox import Sandbox, SandboxConfig, SandboxLimits, mode_problem, run_pytest

MiB = 1024 * 1024
SMALL = SandboxLimits(cpu_s=2, memory_bytes=256 * MiB, fsize_bytes=10 * MiB, nproc=64, tmp_bytes=32 * MiB)
CANARY_KEY = "sk-canary" + "T3stOnlyNotARealKey0123456789abcdefXYZ"
CANARY_TOKEN = "ghp_" + "Canary0123456789abcdefghijklmnopqrstu"


@pytest.fixture(params=["bwrap", "unshare"])
def box(request: pytest.FixtureRequest) -> Sandbox:
    problem = mode_problem(request.param)
    if problem is not None:
        pytest.skip(f"sandbox mode {request.param} unavailable: {problem}")
    return Sandbox(SandboxConfig(modes=(request.param,), limits=SMALL))


def _host_healthy() -> None:
    proc = subprocess.run(["sh", "-c", "echo alive"], capture_output=True, text=True, timeout=10, check=True)
    assert proc.stdout == "alive\n"


# RELIABILITY #14: no network, and failing fast rather than hanging


def test_socket_connect_fails_fast(box: Sandbox, tmp_path: Path) -> None:
    code = """
        import socket
        for host in ("1.1.1.1", "127.0.0.1"):
            try:
                socket.create_connection((host, 80), timeout=20)
            except OSError as exc:
                print(host, type(exc).__name__, exc.errno)
            else:
                print(host, "CONNECTED")
    """
    start = time.monotonic()
    result = box.run([str(box.python), "-c", textwrap.dedent(code)], workdir=tmp_path, timeout_s=30)
    assert time.monotonic() - start < 5
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("OSError 101") + result.stdout.count("ConnectionRefusedError") == 2, result


def test_dns_resolution_fails_fast(box: Sandbox, tmp_path: Path) -> None:
    code = "import socket; socket.getaddrinfo('pypi.org', 443)"
    start = time.monotonic()
    result = box.run([str(box.python), "-c", code], workdir=tmp_path, timeout_s=30)
    assert time.monotonic() - start < 5
    assert result.status == "failed"
    assert "gaierror" in result.stderr


def test_pip_install_fails_fast(box: Sandbox, tmp_path: Path) -> None:
    big = Sandbox(SandboxConfig(modes=box.config.modes))  # pip needs more than 256 MB of address space
    start = time.monotonic()
    result = big.run(
        [str(big.python), "-m", "pip", "install", "--target", "site", "requests"],
        workdir=tmp_path,
        timeout_s=60,
    )
    assert time.monotonic() - start < 30
    assert result.status == "failed"
    assert result.killed_by is None
    assert not (tmp_path / "site" / "requests").exists()


def test_generated_network_test_is_reported_not_hung(box: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "test_net.py").write_text(
        "import urllib.request\n\n"
        "def test_download():\n"
        "    urllib.request.urlopen('http://example.com', timeout=30)\n"
    )
    big = Sandbox(SandboxConfig(modes=box.config.modes))
    start = time.monotonic()
    result = run_pytest(
        tmp_path, [], sandbox=big, timeout_s=60, env_extra={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )
    assert time.monotonic() - start < 20
    assert result.status in ("failed", "errored")
    assert [(t.name, t.outcome) for t in result.tests] == [("test_download", "failed")]
    assert "URLError" in result.tests[0].message or "gaierror" in result.tests[0].message


# RELIABILITY #15: resources


def test_fork_bomb_is_contained(box: Sandbox, tmp_path: Path) -> None:
    marker = f"sbx-forkbomb-{uuid.uuid4().hex}"
    code = f"""
        import os, time
        # {marker}
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """
    result = box.run([str(box.python), "-c", textwrap.dedent(code)], workdir=tmp_path, timeout_s=3)
    assert result.status in ("timeout", "killed")
    assert result.nproc_via == "cgroup" or os.geteuid() != 0
    assert "nproc" in result.limits_hit
    _host_healthy()
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]
    assert leftovers == []


def _cmdline_has(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def test_busy_loop_is_killed_by_the_cpu_limit(box: Sandbox, tmp_path: Path) -> None:
    start = time.monotonic()
    result = box.run([str(box.python), "-c", "while True: pass"], workdir=tmp_path, timeout_s=20)
    assert time.monotonic() - start < 8
    assert (result.status, result.killed_by) == ("killed", "cpu")


def test_sleeping_process_is_killed_by_the_wall_clock(box: Sandbox, tmp_path: Path) -> None:
    result = box.run(["sleep", "60"], workdir=tmp_path, timeout_s=0.5)
    assert (result.status, result.killed_by, result.exit_code) == ("timeout", "timeout", None)
    assert result.duration_s < 5


def test_10gb_allocation_is_refused(box: Sandbox, tmp_path: Path) -> None:
    result = box.run([str(box.python), "-c", "b = bytearray(10 * 1024**3)"], workdir=tmp_path, timeout_s=20)
    assert result.status == "failed"
    assert "memory" in result.limits_hit
    assert "MemoryError" in result.stderr
    _host_healthy()


def test_5gb_file_write_is_stopped(box: Sandbox, tmp_path: Path) -> None:
    code = """
        chunk = b"x" * (1024 * 1024)
        with open("big.bin", "wb") as f:
            for _ in range(5 * 1024):
                f.write(chunk)
    """
    result = box.run([str(box.python), "-c", textwrap.dedent(code)], workdir=tmp_path, timeout_s=20)
    assert result.status == "failed"
    assert "fsize" in result.limits_hit
    assert (tmp_path / "big.bin").stat().st_size <= 10 * MiB
    _host_healthy()


def test_private_tmp_is_size_capped(box: Sandbox, tmp_path: Path) -> None:
    code = """
        for i in range(10):
            with open(f"/tmp/f{i}", "wb") as f:
                f.write(b"x" * (9 * 1024 * 1024))
    """
    result = box.run([str(box.python), "-c", textwrap.dedent(code)], workdir=tmp_path, timeout_s=20)
    assert result.status == "failed"
    assert "No space left on device" in result.stderr


# RELIABILITY #16: secrets; and writes outside the worktree


def test_parent_secrets_are_not_in_the_environment(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("GITHUB_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("MAESTRO_DATABASE_URL", "postgresql://u:pw-canary@db/x")
    code = f"""
        import os, pathlib
        print(sorted(os.environ))
        for pid in ("1", "{os.getpid()}"):
            try:
                print(pid, pathlib.Path(f"/proc/{{pid}}/environ").read_bytes())
            except OSError as exc:
                print(pid, "unreadable", exc)
    """
    result = box.run([str(box.python), "-c", textwrap.dedent(code)], workdir=tmp_path, timeout_s=20)
    assert result.status == "passed", result.stderr
    for needle in (CANARY_KEY, CANARY_TOKEN, "pw-canary", "OPENAI_API_KEY", "GITHUB_TOKEN", "MAESTRO_"):
        assert needle not in result.stdout + result.stderr


def test_parent_secret_values_are_redacted_from_output(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", CANARY_TOKEN)
    result = box.run(
        ["sh", "-c", f"echo token={CANARY_TOKEN} >&2; echo {CANARY_KEY}"], workdir=tmp_path, timeout_s=20
    )
    assert CANARY_TOKEN not in result.stderr
    assert CANARY_KEY not in result.stdout
    assert "[REDACTED]" in result.stderr and "[REDACTED]" in result.stdout


def test_ssh_key_and_other_homes_are_not_readable(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fakehome"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY_KEY}\n")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    script = f"cat ~/.ssh/id_rsa {home}/.ssh/id_rsa; ls -A /root; ls -A /root/.ssh; ls /work/shared; true"
    result = box.run(["sh", "-c", script], workdir=work, timeout_s=20)
    assert CANARY_KEY not in result.stdout + result.stderr
    assert ".ssh" not in result.stdout
    assert "No such file" in result.stderr


def test_writes_outside_the_worktree_fail(box: Sandbox, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    marker = uuid.uuid4().hex
    targets = [
        Path("/work/main") / f"sbx-{marker}",
        Path("/etc") / f"sbx-{marker}",
        tmp_path / f"sbx-{marker}",
    ]
    script = "; ".join(f"echo x > {t}" for t in targets) + f"; echo y > /tmp/sbx-{marker}; true"
    result = box.run(["sh", "-c", script], workdir=work, timeout_s=20)
    assert result.stderr.count("sbx-") >= 2, result.stderr
    for target in [*targets, Path("/tmp") / f"sbx-{marker}"]:
        assert not target.exists(), target
