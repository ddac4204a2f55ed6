"""What the docs workcell verifies about its own edits, without running anything.

* ``code_unchanged``: the module's syntax tree with docstrings removed is identical before and after, so
  a "documentation" edit cannot change behaviour.
* ``broken_links``: relative Markdown links (``[text](path)``, optional ``#anchor``) that do not resolve
  to a file or directory in the worktree. Absolute URLs are not fetched (no network at run time).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

__all__ = ["broken_links", "code_unchanged"]

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")


def _strip_docstrings(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_unchanged(before: str, after: str) -> bool:
    """True when ``after`` differs from ``before`` in docstrings (and comments, formatting) only."""
    try:
        return _strip_docstrings(ast.parse(before)) == _strip_docstrings(ast.parse(after))
    except SyntaxError:
        return False


def broken_links(root: Path, page: str, text: str) -> list[str]:
    """The relative link targets in ``text`` (the page at ``page``) that do not exist under ``root``."""
    base = (root / page).parent
    broken: list[str] = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL (not fetched: no network) or an anchor in the page itself
        path = target.split("#", 1)[0]
        resolved = (base / path).resolve()
        if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
            broken.append(target)
    return broken
