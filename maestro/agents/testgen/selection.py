"""Which generated tests testgen keeps: those that pass on the current code and cover something new.

Greedy, in the order the tests appear in the generated module: a test is kept when it passed and covers
at least one line or branch of the target that neither the existing suite nor an earlier kept test
covers; what it adds then counts as covered for the tests after it. A test is judged per function: a
parametrized test passes only if every case passed, and covers what its cases cover together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro.agents.testgen.pruning import case_key, nodeid_key

__all__ = ["Verdict", "select_tests"]

Reason = Literal["new_coverage", "failed", "skipped", "no_new_coverage"]
Arc = tuple[int, int]


@dataclass(frozen=True)
class Verdict:
    """One generated test function (``name`` or ``Class::name``): kept or dropped, and why."""

    test: str
    reason: Reason
    new_lines: tuple[int, ...] = ()
    new_branches: tuple[Arc, ...] = ()
    message: str = ""
    cases: tuple[str, ...] = field(default=())  # the node ids that ran

    @property
    def kept(self) -> bool:
        return self.reason == "new_coverage"

    def explain(self) -> str:
        """One line for the PR body and the feedback to the model."""
        if self.reason == "failed":
            first = self.message.strip().splitlines()[0][:200] if self.message.strip() else "no message"
            return f"dropped `{self.test}`: it fails on the current code ({first})"
        if self.reason == "skipped":
            return f"dropped `{self.test}`: it was skipped, so it tests nothing"
        if self.reason == "no_new_coverage":
            return (
                f"dropped `{self.test}`: it passes but covers no line or branch that is not covered already"
            )
        parts = []
        if self.new_lines:
            parts.append(f"line(s) {_ranges(self.new_lines)}")
        if self.new_branches:
            parts.append("branch(es) " + ", ".join(f"{a}->{b}" for a, b in self.new_branches[:12]))
        return f"kept `{self.test}`: it passes and newly covers {' and '.join(parts)}"

    def to_record(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "kept": self.kept,
            "reason": self.reason,
            "new_lines": list(self.new_lines),
            "new_branches": [list(a) for a in self.new_branches],
            "message": self.message,
            "cases": list(self.cases),
        }


def select_tests(
    order: Sequence[str],
    tests: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    per_test: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    covered_lines: Iterable[int],
    covered_branches: Iterable[Sequence[int]],
) -> list[Verdict]:
    """A verdict for every test function that ran, in ``order`` (the module's), then any others sorted.

    ``tests``/``failures``: a test summary's per-test outcomes and failure messages (JUnit); ``per_test``:
    node id -> ``{"lines", "branches"}`` it covered; ``covered_*``: what the existing suite covers."""
    outcomes: dict[str, list[str]] = {}
    cases: dict[str, list[str]] = {}
    for t in tests:
        key = case_key(t["function"], t["classname"])
        outcomes.setdefault(key, []).append(t["outcome"])
        cases.setdefault(key, []).append(t["name"])
    messages = {f["name"]: f.get("message", "") for f in failures}
    lines_by: dict[str, set[int]] = {}
    branches_by: dict[str, set[Arc]] = {}
    for nodeid, seen in per_test.items():
        key = nodeid_key(nodeid)
        lines_by.setdefault(key, set()).update(int(n) for n in seen.get("lines", []))
        branches_by.setdefault(key, set()).update((int(a[0]), int(a[1])) for a in seen.get("branches", []))

    lines = set(covered_lines)
    branches = {(int(a[0]), int(a[1])) for a in covered_branches}
    ranked = [k for k in order if k in outcomes] + sorted(k for k in outcomes if k not in order)
    verdicts: list[Verdict] = []
    for key in ranked:
        results = outcomes[key]
        ran = tuple(cases[key])
        if any(o in ("failed", "error") for o in results):
            message = next((messages[c] for c in ran if c in messages), "")
            verdicts.append(Verdict(key, "failed", message=message, cases=ran))
            continue
        if all(o == "skipped" for o in results):
            verdicts.append(Verdict(key, "skipped", cases=ran))
            continue
        new_lines = lines_by.get(key, set()) - lines
        new_branches = branches_by.get(key, set()) - branches
        if not new_lines and not new_branches:
            verdicts.append(Verdict(key, "no_new_coverage", cases=ran))
            continue
        lines |= new_lines
        branches |= new_branches
        verdicts.append(
            Verdict(key, "new_coverage", tuple(sorted(new_lines)), tuple(sorted(new_branches)), cases=ran)
        )
    return verdicts


def _ranges(numbers: Sequence[int]) -> str:
    """``1-3, 7`` for [1, 2, 3, 7] (at most a dozen ranges, then "...")."""
    spans: list[tuple[int, int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    shown = [f"{a}-{b}" if a != b else str(a) for a, b in spans[:12]]
    return ", ".join(shown) + (", ..." if len(spans) > 12 else "")
