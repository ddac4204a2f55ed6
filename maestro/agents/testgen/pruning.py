"""Reading and cutting the generated test module by parsing it (never by regex): its test functions, and
the module without the ones testgen drops (imports, fixtures and helpers stay)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

__all__ = ["case_key", "collected_tests", "drop_tests", "extract_code", "nodeid_key"]

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(reply: str) -> str:
    """The Python in a model's reply: the longest fenced block, else the reply itself."""
    blocks = _FENCE.findall(reply)
    code = max(blocks, key=len) if blocks else reply
    return code.strip() + "\n"


def _is_test(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")


def collected_tests(source: str) -> list[str]:
    """``name`` and ``Class::name`` of the test functions in ``source`` (what pytest would collect)."""
    names: list[str] = []
    for node in ast.parse(source).body:
        if _is_test(node):
            names.append(node.name)  # type: ignore[attr-defined]
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.extend(f"{node.name}::{item.name}" for item in node.body if _is_test(item))  # type: ignore[attr-defined]
    return names


def drop_tests(source: str, dropped: Iterable[str]) -> str:
    """``source`` without the test functions named in ``dropped`` (``name`` or ``Class::name``; a
    pytest node id's last parts are matched, parametrized ids reduced to the function)."""
    wanted = {nodeid_key(n) for n in dropped}
    lines = source.splitlines(keepends=True)
    cut: list[tuple[int, int]] = []
    for node in ast.parse(source).body:
        if _is_test(node) and node.name in wanted:  # type: ignore[attr-defined]
            cut.append(_span(node))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if _is_test(item) and f"{node.name}::{item.name}" in wanted:  # type: ignore[attr-defined]
                    cut.append(_span(item))
    for start, end in sorted(cut, reverse=True):
        del lines[start:end]
    return "".join(lines)


def _span(node: ast.stmt) -> tuple[int, int]:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first - 1, node.end_lineno or node.lineno


def nodeid_key(nodeid: str) -> str:
    """``name`` or ``Class::name`` of a pytest node id (``path::Class::name[param]``)."""
    parts = nodeid.split("::")
    name = parts[-1].split("[")[0]
    if len(parts) >= 2 and parts[-2].startswith("Test"):
        return f"{parts[-2]}::{name}"
    return name


def case_key(function: str, classname: str) -> str:
    """The key ``drop_tests`` matches for a JUnit test case (``Class::name`` for a method)."""
    cls = classname.rsplit(".", 1)[-1]
    name = function.split("[")[0]
    return f"{cls}::{name}" if cls.startswith("Test") else name
