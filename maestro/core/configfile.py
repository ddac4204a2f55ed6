"""Reading YAML configuration files with errors that name the file, the key and the problem."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from maestro.core.errors import ConfigurationError


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML; a syntax error becomes ConfigurationError with the line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{source}:{where}: not valid YAML: {problem}") from None


def describe_validation_error(exc: ValidationError, source: str, data: Any) -> str:
    """One line per problem: ``file: deployments[2] ('gpt-4o').pricee: extra inputs are not permitted``."""
    lines = []
    for error in exc.errors():
        lines.append(f"{source}: {_describe_loc(error['loc'], data)}: {error['msg']}")
    return "\n".join(lines)


def _describe_loc(loc: tuple[int | str, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                label += f" ('{node['name']}')"
            parts.append(label)
        else:
            parts.append(f".{item}" if parts else item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"
