"""Versioned prompt templates, ``templates/<name>.v<N>.jinja``, each known by name, version and hash.

A template's ``sha256`` is recorded with what it produced (a decision, a ledger entry), so an answer can be
traced to the exact prompt text. ``load(name)`` takes the highest version; ``load(name, version=N)`` pins
one. Rendering uses a sandboxed Jinja2 environment with ``StrictUndefined`` (a missing variable is an
error, never an empty string) and no autoescaping (prompts are not HTML).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from maestro.core.errors import ConfigurationError

__all__ = ["PromptTemplate", "load", "versions"]

_FILE = re.compile(r"(?P<name>[a-z0-9_]+)\.v(?P<version>[0-9]+)\.jinja")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    @property
    def ref(self) -> str:
        """``name@vN#sha12``: how records name the prompt that was used."""
        return f"{self.name}@v{self.version}#{self.sha256[:12]}"

    def render(self, **variables: Any) -> str:
        rendered: str = _compiled(self.source).render(**variables)
        return rendered.strip() + "\n"


@cache
def _compiled(source: str) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = _json  # plain JSON: Jinja's ``tojson`` escapes < > & for HTML (``-\u003e``)
    return env.from_string(source)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _files() -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for entry in resources.files("maestro.prompts").joinpath("templates").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found[(match["name"], int(match["version"]))] = entry.name
    return found


def versions(name: str) -> list[int]:
    """The versions of ``name`` that ship, ascending."""
    return sorted(v for (n, v) in _files() if n == name)


@cache
def load(name: str, version: int | None = None) -> PromptTemplate:
    """The template ``name`` at ``version`` (default: the newest); ``ConfigurationError`` if absent."""
    available = versions(name)
    if not available:
        raise ConfigurationError(f"no prompt template named {name!r} under maestro/prompts/templates")
    chosen = available[-1] if version is None else version
    if chosen not in available:
        raise ConfigurationError(f"prompt {name!r} has no version {chosen}: versions {available}")
    filename = _files()[(name, chosen)]
    source = resources.files("maestro.prompts").joinpath("templates", filename).read_text(encoding="utf-8")
    return PromptTemplate(name=name, version=chosen, source=source)
