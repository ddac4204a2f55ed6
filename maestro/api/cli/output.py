"""The CLI's output layer: JSON documents on stdout, human output on stderr, errors with exit codes.

DESIGN.md: exit codes 0 success, 1 failure, 2 usage error, 3 refused by policy/guard; ``--json`` prints
exactly one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from maestro.core.errors import MaestroError

if TYPE_CHECKING:
    from rich.progress import Progress

err_console = Console(stderr=True, soft_wrap=True)


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def write_text(text: str) -> None:
    """Write answer text to stdout as it arrives (streaming)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def fail(error: MaestroError, *, as_json: bool) -> NoReturn:
    """Report a Maestro error (on stderr, and as JSON on stdout with ``--json``) and exit with its code."""
    if as_json:
        emit_json(error.to_dict())
    err_console.print(f"[bold red]error[/] ({error.code}): {error.message}", highlight=False)
    raise typer.Exit(error.exit_code)


@contextmanager
def reported(*, as_json: bool) -> Iterator[None]:
    """Turn MaestroErrors raised inside the block into a message and the right exit code."""
    try:
        yield
    except MaestroError as exc:
        fail(exc, as_json=as_json)


def progress_bar(label: str, *, quiet: bool = False) -> Progress:
    """A transient progress bar on stderr (label, bar, done/total, elapsed, description); off with
    ``quiet`` (``--json``) and when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
        disable=quiet or not err_console.is_terminal,
    )
