"""The workcell registry: workcells plug in through the ``maestro.workcells`` entry-point group.

A package declares ``[project.entry-points."maestro.workcells"] name = "module:WORKCELL"``, where
``WORKCELL`` is a :class:`Workcell`; the runtime never has to be edited to add one. ``register`` adds one
in-process (tests, notebooks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from langgraph.graph import StateGraph

from maestro.core.errors import ConfigurationError, NotFound

__all__ = ["ENTRY_POINT_GROUP", "Workcell", "get_workcell", "register", "unregister", "workcells"]

ENTRY_POINT_GROUP = "maestro.workcells"


@dataclass(frozen=True)
class Workcell:
    """A named graph factory plus what the runtime needs to run it under an authority.

    ``action``: the policy action a principal must be allowed to start it (e.g. ``chat``,
    ``cypher.read``); ``build``: returns the uncompiled ``StateGraph`` (its context schema is
    :class:`~maestro.agents.runtime.context.RunContext`); ``initial_state``: turns the run's JSON input into
    the graph's first state (validating it); ``output``: picks the run's JSON output from the final state.
    """

    name: str
    description: str
    action: str
    build: Callable[[], StateGraph[Any, Any, Any, Any]]
    initial_state: Callable[[Mapping[str, Any]], dict[str, Any]]
    output: Callable[[Mapping[str, Any]], dict[str, Any]]
    recursion_limit: int = 25
    tags: tuple[str, ...] = field(default=())


_lock = threading.Lock()
_registered: dict[str, Workcell] = {}
_loaded = False


def register(workcell: Workcell) -> Workcell | None:
    """Add (or replace) a workcell in this process; returns the one it replaced, if any."""
    _load_entry_points()
    with _lock:
        previous = _registered.get(workcell.name)
        _registered[workcell.name] = workcell
        return previous


def unregister(name: str, *, restore: Workcell | None = None) -> None:
    """Remove a workcell added with ``register`` (putting ``restore`` back in its place if given)."""
    with _lock:
        _registered.pop(name, None)
        if restore is not None:
            _registered[name] = restore


def _load_entry_points() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                value = entry.load()
            except Exception as exc:  # a broken plugin names itself instead of breaking every command
                raise ConfigurationError(
                    f"workcell entry point {entry.name!r} ({entry.value}) failed to load: {exc}"
                ) from exc
            if not isinstance(value, Workcell):
                raise ConfigurationError(
                    f"workcell entry point {entry.name!r} ({entry.value}) is not a maestro Workcell"
                )
            _registered.setdefault(value.name, value)
        _loaded = True


def workcells() -> dict[str, Workcell]:
    """Every workcell, by name."""
    _load_entry_points()
    with _lock:
        return dict(sorted(_registered.items()))


def get_workcell(name: str) -> Workcell:
    found = workcells().get(name)
    if found is None:
        raise NotFound(
            f"no workcell named {name!r}: known workcells are {', '.join(workcells()) or 'none'}",
            workcell=name,
        )
    return found
