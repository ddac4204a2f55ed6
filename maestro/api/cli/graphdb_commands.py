"""``maestro graph load|list|schema|drop|stop``: the tenant's graphs in the graph engine.

``load`` validates every file before writing, loads into the tenant's graph (the catalog maps the
tenant's name to the engine key), registers it with its node and relationship counts and records a
``graph.loaded`` ledger entry. Loading and dropping are authorised as ``graph.load`` (scope
``rag:ingest``: data ingestion), reading the schema as ``cypher.read``; the CLI acts as the local admin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    app,
    operator_authority,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, progress_bar, reported

if TYPE_CHECKING:
    from maestro.api.container import Services
    from maestro.core.authority import Authority
    from maestro.tools.graph.loader import LoadReport

graph_app = typer.Typer(
    help="Graphs: load files into a tenant's graph, list, inspect, drop.", no_args_is_help=True
)
app.add_typer(graph_app, name="graph")

GraphOpt = Annotated[
    str, typer.Option("--graph", "-g", help="The tenant's graph name ([A-Za-z0-9_-]{1,64}).")
]


@graph_app.command("load")
def graph_load(
    files: Annotated[
        list[Path], typer.Argument(help="Cypher scripts (.cypher/.cql), CSV files, directories.")
    ],
    graph: GraphOpt,
    tenant: TenantOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Delete the graph's data first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load files into the tenant's graph and register it (validated first: a bad file writes nothing)."""
    from maestro.tools.graph.catalog import check_graph_name
    from maestro.tools.graph.loader import load_file

    settings = settings_from_env()
    with reported(as_json=as_json):
        check_graph_name(graph)
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            _authorize(services, authority, "graph.load", graph)
            catalog = services.graph_catalog()
            key = catalog.key_for(authority.tenant, graph)
            backend = services.graph()
            with _progress(as_json) as advance:
                report = load_file(backend, key, files, replace=replace, progress=advance)
            nodes, relationships = _totals(services, key)
            catalog.register(
                authority.tenant,
                graph,
                by=authority.principal.id,
                nodes=nodes,
                relationships=relationships,
                source=", ".join(report.files),
            )
            services.record(
                "graph.loaded",
                {
                    "tenant": authority.tenant,
                    "principal_id": authority.principal.id,
                    "graph": graph,
                    "files": report.files,
                    "nodes": report.nodes,
                    "relationships": report.relationships,
                    "replace": replace,
                },
            )
        finally:
            services.close()
    doc = _load_doc(report, graph, authority.tenant, nodes, relationships)
    if as_json:
        emit_json(doc)
        return
    err_console.print(
        f"[bold]{graph}[/] ({authority.tenant}): loaded {report.nodes} node(s), {report.relationships} "
        f"relationship(s) from {len(report.files)} file(s) in {report.elapsed_s:.1f}s; the graph now holds "
        f"{nodes} node(s), {relationships} relationship(s)",
        highlight=False,
    )


@graph_app.command("list")
def graph_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's graphs with their counts (from the catalog; the engine is not started)."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            entries = services.graph_catalog().list(authority.tenant)
        finally:
            services.close()
    if as_json:
        emit_json({"tenant": authority.tenant, "graphs": [e.to_dict() for e in entries]})
        return
    if not entries:
        err_console.print(
            f"tenant {authority.tenant!r} has no graphs: `maestro graph load FILE --graph NAME`"
        )
    for e in entries:
        err_console.print(
            f"[bold]{e.name}[/]  {e.nodes} nodes, {e.relationships} relationships  "
            f"[dim]updated {e.updated_at} from {e.source or '-'}[/]",
            highlight=False,
        )


@graph_app.command("schema")
def graph_schema(
    graph: GraphOpt,
    tenant: TenantOpt = None,
    samples: Annotated[int, typer.Option(min=0, max=20, help="Sample values per property.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Labels, relationship types with the label pairs they connect, and property samples."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            _authorize(services, authority, "cypher.read", graph)
            entry = services.graph_catalog().resolve(authority.tenant, graph)
            schema = services.graph().schema(entry.key, samples=samples)
        finally:
            services.close()
    doc: dict[str, Any] = {"graph": graph, "tenant": authority.tenant, **schema.to_dict()}
    if as_json:
        emit_json(doc)
        return
    for lab in doc["labels"]:
        err_console.print(f"(:{lab['name']}) x{lab['count']}  {_props(lab['properties'])}", highlight=False)
    for rel in doc["relationships"]:
        pairs = ", ".join(f"(:{a})->(:{b})" for a, b in rel["patterns"])
        err_console.print(
            f"[:{rel['type']}] x{rel['count']}  {pairs}  {_props(rel['properties'])}", highlight=False
        )


@graph_app.command("drop")
def graph_drop(
    graph: GraphOpt,
    tenant: TenantOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the tenant's graph from the engine and the catalog."""
    settings = settings_from_env()
    with reported(as_json=False):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            _authorize(services, authority, "graph.load", graph)
            entry = services.graph_catalog().resolve(authority.tenant, graph)
            if not yes:
                if sys.stdin is None or not sys.stdin.isatty():
                    err_console.print("refusing to drop without confirmation: pass --yes")
                    raise typer.Exit(2)
                typer.confirm(
                    f"drop graph {graph!r} of tenant {authority.tenant!r} ({entry.nodes} nodes)?", abort=True
                )
            services.graph().delete_graph(entry.key)
            services.graph_catalog().remove(authority.tenant, graph)
            services.record(
                "graph.dropped",
                {"tenant": authority.tenant, "principal_id": authority.principal.id, "graph": graph},
            )
        finally:
            services.close()
    err_console.print(f"dropped graph {graph!r} of tenant {authority.tenant!r}")


@graph_app.command("stop")
def graph_stop() -> None:
    """Stop the embedded FalkorDB server of this data dir (whichever process started it)."""
    from maestro.tools.graph.embedded import EmbeddedFalkorServer

    settings = settings_from_env()
    if settings.graph_url:
        err_console.print("MAESTRO_GRAPH_URL is set: there is no embedded graph server to stop")
        return
    stopped = EmbeddedFalkorServer(settings.data_dir).shutdown()
    err_console.print("embedded graph server stopped" if stopped else "no embedded graph server is running")


def _authorize(services: Services, authority: Authority, action: str, graph: str) -> None:
    services.authorizer.authorize(
        authority, action, {"kind": "graph", "tenant": authority.tenant, "id": graph}
    )


def _totals(services: Services, key: str) -> tuple[int, int]:
    """The graph's node and relationship counts after the load (what the catalog records)."""
    backend = services.graph()
    if key not in backend.graphs():  # an empty load creates no graph
        return 0, 0
    nodes = backend.query_readonly(key, "MATCH (n) RETURN count(n)", timeout_ms=60_000, row_cap=1)
    rels = backend.query_readonly(key, "MATCH ()-[r]->() RETURN count(r)", timeout_ms=60_000, row_cap=1)
    return int(nodes.rows[0][0]), int(rels.rows[0][0])


def _load_doc(report: LoadReport, graph: str, tenant: str, nodes: int, relationships: int) -> dict[str, Any]:
    return {
        "graph": graph,
        "tenant": tenant,
        "nodes": report.nodes,
        "relationships": report.relationships,
        "files": report.files,
        "elapsed_s": round(report.elapsed_s, 3),
        "totals": {"nodes": nodes, "relationships": relationships},
    }


def _props(properties: dict[str, list[Any]]) -> str:
    return ", ".join(f"{k}: {', '.join(repr(v) for v in vals)}" for k, vals in properties.items())


class _progress:
    """A rich progress bar on stderr for long loads; off when stderr is not a terminal or with --json."""

    def __init__(self, as_json: bool) -> None:
        self._bar = progress_bar("load", quiet=as_json)
        self._task = self._bar.add_task("", total=None)

    def __enter__(self) -> Any:
        self._bar.__enter__()

        def advance(done: int, total: int, where: str) -> None:
            self._bar.update(self._task, completed=done, total=total, description=where[-60:])

        return advance

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)
