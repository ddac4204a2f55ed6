"""Which files a repository workcell shows the model: the ones the task and the failing tests point at.

Scores are word overlap between the task (plus the failing tests' names and messages) and each file's
path and text, with a bonus for files a failing test's traceback or node id names, a larger one for
the files a code search over the repository (retrieval: dense + sparse) ranked for the query. The files
a plan (codegen's) names lead, in the plan's order, but take at most half the places, so the search and
the failing tests always have room.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from maestro.tools.workspace import Worktree, repository_files

__all__ = ["mentioned_paths", "pick_files"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
MAX_FILE_CHARS = 12_000
MAX_TOTAL_CHARS = 48_000
SEARCH_BONUS = 20.0  # the best-ranked search hit; later hits get less
PLAN_LEAD = 100_000.0  # per place: the plan's first files score above anything else, in the plan's order


def _words(text: str) -> set[str]:
    out: set[str] = set()
    for word in _WORD.findall(text):
        low = word.lower()
        out.add(low)
        out.update(part for part in low.split("_") if len(part) > 2)
    return out


def pick_files(
    worktree: Worktree,
    query: str,
    mentioned: Iterable[str] = (),
    *,
    limit: int = 6,
    ranked: Sequence[str] = (),
    planned: Sequence[str] = (),
) -> list[dict[str, str]]:
    """Up to ``limit`` source files as ``{"path", "text"}``, most relevant first, within a size budget.

    ``ranked``: files a code search found for the query, best first; they score above word overlap.
    ``planned``: files a plan names, most important first; the first ``limit // 2`` lead, the others
    score like a search hit."""
    wanted = _words(query)
    named = list(mentioned)
    bonuses = {path: SEARCH_BONUS * (len(ranked) - i) / max(1, len(ranked)) for i, path in enumerate(ranked)}
    leading = max(1, limit // 2)
    for i, path in enumerate(planned):
        lead = PLAN_LEAD * (leading - i) if i < leading else SEARCH_BONUS
        bonuses[path] = bonuses.get(path, 0.0) + lead
    scored: list[tuple[float, str, str]] = []
    for path in repository_files(worktree):
        if not path.endswith((".py", ".md", ".rst", ".toml", ".cfg", ".txt")):
            continue
        try:
            text = worktree.read(path)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        overlap = len(wanted & _words(path + "\n" + text))
        bonus = 10.0 * sum(1 for n in named if path in n or _module(path) in n) + bonuses.get(path, 0.0)
        if overlap or bonus:
            scored.append((overlap + bonus + (0.5 if path.endswith(".py") else 0.0), path, text))
    scored.sort(key=lambda item: (-item[0], item[1]))
    picked: list[dict[str, str]] = []
    total = 0
    for _, path, text in scored:
        shown = text if len(text) <= MAX_FILE_CHARS else text[:MAX_FILE_CHARS] + "\n# ... (truncated)\n"
        if total + len(shown) > MAX_TOTAL_CHARS or len(picked) >= limit:
            break
        picked.append({"path": path, "text": shown})
        total += len(shown)
    return picked


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def mentioned_paths(failures: Sequence[dict[str, str]]) -> list[str]:
    """The node ids and messages of failing tests (they name the test files and often the module)."""
    return [f"{f['name']} {f.get('message', '')}" for f in failures]
