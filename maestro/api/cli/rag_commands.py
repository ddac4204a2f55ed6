"""``maestro rag ingest`` and ``maestro rag query``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    operator_authority,
    rag_app,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, progress_bar, reported, write_text

if TYPE_CHECKING:
    from maestro.retrieval.answer import RagAnswer
    from maestro.retrieval.ingest import IngestReport

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]


@rag_app.command("ingest")
def rag_ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories (recursively).")],
    collection: CollectionOpt,
    tenant: TenantOpt = None,
    retention: Annotated[str, typer.Option(help="Retention class recorded on every chunk.")] = "standard",
    prune: Annotated[
        bool, typer.Option(help="Remove chunks of files deleted from the directories given.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Load, chunk, flag PII, embed and index files; only what changed is written."""

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        authority = operator_authority(settings, tenant)
        try:
            services.authorizer.authorize(
                authority, "rag.ingest", {"kind": "collection", "tenant": authority.tenant, "id": collection}
            )
            ingestor = services.ingestor()
            with progress_bar("ingest") as bar:
                task = bar.add_task("", total=None)

                def advance(done: int, total: int, source: str) -> None:
                    bar.update(task, completed=done, total=total, description=source[-60:])

                report = ingestor.ingest(
                    paths,
                    collection=collection,
                    tenant=authority.tenant,
                    retention=retention,
                    prune=prune,
                    progress=advance,
                )
            services.record(
                "rag.ingested",
                {
                    "tenant": authority.tenant,
                    "principal_id": authority.principal.id,
                    "collection": collection,
                    "files": report.to_dict()["files"],
                    "chunks": report.to_dict()["chunks"],
                },
            )
        finally:
            services.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)


def _print_report(report: IngestReport) -> None:
    doc = report.to_dict()
    files, chunks = doc["files"], doc["chunks"]
    err_console.print(
        f"[bold]{report.collection}[/] ({report.tenant}): {files['indexed']} file(s) indexed, "
        f"{files['unchanged']} unchanged, {files['skipped']} skipped, {files['removed']} removed; "
        f"{chunks['total']} chunks ({chunks['added']} added, {chunks['removed']} removed) "
        f"in {doc['seconds']:.1f}s",
        highlight=False,
    )
    for skipped in doc["skipped"]:
        err_console.print(f"  [yellow]skipped[/] {skipped['source']}: {skipped['reason']}", highlight=False)


@rag_app.command("query")
def rag_query(
    question: Annotated[str, typer.Argument(help="The question ('-' reads stdin).")],
    collection: CollectionOpt,
    tenant: TenantOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Chunks to retrieve.")] = 5,
    mmr: Annotated[bool, typer.Option(help="Diversify the chunks with maximal marginal relevance.")] = False,
    max_tokens: Annotated[int, typer.Option(min=1, help="Upper bound on generated tokens.")] = 512,
    as_json: JsonOpt = False,
) -> None:
    """Answer from a collection with verified citations (only supported sentences are kept)."""
    from maestro.api.cli.common import read_stdin
    from maestro.retrieval.answer import RagQuery

    if question == "-":
        question = read_stdin()
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            query = RagQuery(question=question, collection=collection, k=k, mmr=mmr, max_tokens=max_tokens)
            result = asyncio.run(services.rag().answer(operator_authority(settings, tenant), query))
        finally:
            services.close()
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_answer(result)


def _print_answer(result: RagAnswer) -> None:
    write_text(result.answer + "\n")
    doc: dict[str, Any] = result.to_dict()
    for c in doc["citations"]:
        snippet = " ".join(c["text"].split())[:100]
        err_console.print(f"  [{c['n']}] {c['source']} ({c['score']:.2f}): {snippet}", highlight=False)
    details = result.details()
    dropped = [s for s in details["sentences"] if s["verdict"] != "supported"]
    if dropped:
        err_console.print(f"[yellow]{len(dropped)} unsupported sentence(s) dropped[/]", highlight=False)
    if details["flagged_chunks"]:
        err_console.print(
            f"[yellow]{len(details['flagged_chunks'])} retrieved chunk(s) read like instructions and were "
            "kept out of the prompt[/]",
            highlight=False,
        )
    err_console.print(
        f"[dim]{doc['model'] or 'no model call'} · {doc['decision_id'] or '-'}[/]", highlight=False
    )
