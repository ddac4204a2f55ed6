"""``maestro cypher check``: the Cypher guard on its own (DESIGN.md: exit 0 allowed, 3 refused)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from maestro.api.cli.common import JsonOpt, app, read_stdin
from maestro.api.cli.output import emit_json, err_console, reported, write_text

if TYPE_CHECKING:
    from maestro.tools.cypher import GuardResult

cypher_app = typer.Typer(help="Natural language to Cypher and the read-only guard.", no_args_is_help=True)
app.add_typer(cypher_app, name="cypher")


@cypher_app.command("check")
def cypher_check(
    max_hops: Annotated[
        int, typer.Option("--max-hops", min=1, help="Longest variable-length path allowed.")
    ] = 5,
    row_cap: Annotated[
        int, typer.Option("--row-cap", min=1, help="LIMIT appended to, or lowered on, the final RETURN.")
    ] = 1000,
    params: Annotated[
        str | None,
        typer.Option("--params", help='Parameters as a JSON object, e.g. \'{"name": "billing"}\'.'),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the query on stdin: {"allowed", "reasons", "query"}; the (rewritten) query goes to stdout."""
    from maestro.core.errors import Refused
    from maestro.tools.cypher import CypherGuard

    query = read_stdin()
    with reported(as_json=as_json):
        supplied = _parse_params(params)
        result = CypherGuard(max_hops=max_hops, row_cap=row_cap).check(query, supplied)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_result(result)
    if not result.allowed:
        raise typer.Exit(Refused.exit_code)


def _parse_params(text: str | None) -> dict[str, object] | None:
    import json

    from maestro.core.errors import InvalidRequest

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--params is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"--params must be a JSON object, got {type(value).__name__}")
    return value


def _print_result(result: GuardResult) -> None:
    from rich.markup import escape

    if result.allowed:
        write_text(result.query.rstrip("\n") + "\n")
        err_console.print("[bold green]allowed[/]", highlight=False)
        for note in result.reasons:
            err_console.print(f"  [dim]note:[/] {escape(note)}", highlight=False)
        return
    err_console.print("[bold red]refused[/]", highlight=False)
    for reason in result.reasons:
        err_console.print(f"  - {escape(reason)}", highlight=False)
