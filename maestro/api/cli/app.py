"""The ``maestro`` command line (typer + rich).

Every heavy import (litellm, llama.cpp, SQLAlchemy engines, FastAPI) happens inside the command that
needs it, so ``maestro --help`` answers quickly. Commands build ``Settings`` once and pass it down.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from maestro.api.cli import (
    eval_commands,
    governance_commands,
    graph_commands,
    graphdb_commands,
    pr_commands,
    rag_commands,
    router_commands,
    run_commands,
    worker_commands,
)
from maestro.api.cli.common import JsonOpt, app, db_app, settings_from_env
from maestro.api.cli.output import emit_json, err_console, reported, write_text

__all__ = [
    "app",
    "eval_commands",
    "governance_commands",
    "graph_commands",
    "graphdb_commands",
    "main",
    "pr_commands",
    "rag_commands",
    "router_commands",
    "run_commands",
    "worker_commands",
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default MAESTRO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MAESTRO_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) on the embedded defaults."""
    import uvicorn

    from maestro.api.main import create_app

    settings = settings_from_env()
    _configure_logging(settings.log_level)
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    with reported(as_json=False):
        application = create_app(settings)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to the root handler, which redacts PII
    )


def _configure_logging(level: str) -> None:
    """Log to stderr through the PII redaction filter (RELIABILITY #31)."""
    import logging

    from maestro.tools.pii.logredact import install_log_redaction

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the state DB to the newest schema."""
    from maestro.router.factory import open_state_db

    settings = settings_from_env()
    with reported(as_json=False):
        open_state_db(settings).dispose()
    err_console.print(f"state DB at head: {settings.resolved_database_url}")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark: router, pii, rag, cypher or codegen.")],
    as_json: JsonOpt = False,
    quick: Annotated[bool, typer.Option(help="Fewer iterations (smoke run).")] = False,
    corpus: Annotated[
        Path | None, typer.Option(help="rag: the docs' _sources dir (default: Debian python3.11-doc's).")
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(help="rag: a JSON-lines question file (default: the packaged one).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="codegen: oracle (canonical solutions, the default), auto or a deployment name."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="codegen: only the first N HumanEval problems.")
    ] = None,
) -> None:
    """Run a benchmark that measures a baseline in the same run and prints ratios."""
    from maestro.bench import run_bench

    if name != "rag" and (corpus is not None or questions is not None):
        raise typer.BadParameter("--corpus and --questions apply to `maestro bench rag` only")
    if name != "codegen" and (model is not None or limit is not None):
        raise typer.BadParameter("--model and --limit apply to `maestro bench codegen` only")
    with reported(as_json=as_json):
        if name == "codegen":
            from maestro.bench.codegen import bench_codegen

            report = bench_codegen(
                settings_from_env(), model=model or "oracle", limit=limit, quick=quick, progress=not as_json
            ).to_dict()
        elif name == "rag":
            from maestro.bench.rag import bench_rag

            report = bench_rag(
                settings_from_env(), quick=quick, corpus=corpus, questions_path=questions
            ).to_dict()
        else:
            report = run_bench(name, settings=settings_from_env(), quick=quick)
    if as_json:
        emit_json(report)
        return
    err_console.print_json(data=report)


@app.command()
def version() -> None:
    """Print Maestro's version."""
    from maestro import __version__

    write_text(__version__ + "\n")


def main() -> None:
    """Console-script entry point."""
    app()
