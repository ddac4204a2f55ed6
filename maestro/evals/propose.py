"""``maestro eval propose-weights``: new routing weights from eval results, as a pull request.

1. The current weights are read from the weights repository's default branch
   (``MAESTRO_EVAL_WEIGHTS_REPO``, file ``MAESTRO_EVAL_WEIGHTS_FILE``) - or, with no repository
   configured, from the local ``MAESTRO_WEIGHTS_PATH``.
2. ``fit.fit_weights`` re-estimates every pair the eval runs measured; ``fit.compare`` keeps only the
   significant changes. With none, nothing is written and no PR is opened (noise never opens a PR).
3. The new file carries the significant changes only (noise-level re-estimates keep their old entry,
   so the diff is exactly what moved). Dry-run prints the unified diff and stops.
4. ``open_pr``: commit the file on a ``maestro/eval/...`` branch and open a PR through the PR port,
   labelled ``routing-weights``, with the report in the body (per task class: old vs new quality,
   samples, interval, the model each routes to and the cost impact). An open weights PR on the same
   repository is updated (same idempotency key and branch), never duplicated. Bots only open it:
   approving and merging need a human with ``eval:approve`` (policy ``tools.rego``).
   Without ``open_pr`` the file is written to the local weights path.
Ledger: ``eval.weights_proposed`` (or ``eval.weights_unchanged``) with the eval runs, the changes (task,
model, numbers) and the PR id.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro.core.authority import Authority
from maestro.core.clock import utcnow
from maestro.core.errors import ConfigurationError, InvalidRequest
from maestro.core.settings import Settings
from maestro.evals.fit import Change, Impact, compare, fit_weights, routing_impact, with_estimates
from maestro.evals.types import ResultRow
from maestro.router.catalog import Catalog
from maestro.router.weights import Estimate, Weights, dump_weights, parse_weights

__all__ = ["WEIGHTS_LABEL", "Proposal", "WeightsTarget", "propose_weights"]

WEIGHTS_LABEL = "routing-weights"
LABELS = (WEIGHTS_LABEL, "eval")

Recorder = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class WeightsTarget:
    """Where the weights live: a repository (PRs) or a local file."""

    repo: str | None
    file: str
    local_path: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> WeightsTarget:
        return cls(settings.eval_weights_repo, settings.eval_weights_file, settings.weights_path)


@dataclass
class Proposal:
    changes: list[Change]
    impacts: list[Impact]
    old_text: str
    new_text: str
    version: str
    eval_runs: list[str]
    source: str
    pr: dict[str, Any] | None = None
    written: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def significant(self) -> list[Change]:
        return [c for c in self.changes if c.significant]

    @property
    def changed(self) -> bool:
        return bool(self.significant)

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                fromfile=f"a/{self.source}",
                tofile=f"b/{self.source}",
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "version": self.version,
            "eval_runs": list(self.eval_runs),
            "source": self.source,
            "changes": [c.to_dict() for c in self.changes],
            "impacts": [i.to_dict() for i in self.impacts],
            "diff": self.diff if self.changed else "",
            "pr": self.pr,
            "written": self.written,
            "notes": list(self.notes),
        }


def propose_weights(
    *,
    settings: Settings,
    authority: Authority,
    catalog: Catalog,
    rows: Sequence[ResultRow],
    eval_runs: Sequence[str],
    target: WeightsTarget,
    dry_run: bool = False,
    open_pr: bool = False,
    pr_tools: Any = None,
    record: Recorder | None = None,
    min_samples: int = 10,
) -> Proposal:
    """See the module docstring. ``pr_tools``: a ``RepoTools``-like object (``prs()``, ``pr_config``)."""
    if not rows:
        raise InvalidRequest("no eval results to fit: run `maestro eval run` first")
    if open_pr and not target.repo:
        raise ConfigurationError(
            "opening a weights pull request needs the weights repository: set MAESTRO_EVAL_WEIGHTS_REPO "
            "(a git URL or path) and MAESTRO_EVAL_WEIGHTS_FILE (the file inside it)"
        )
    worktree = None
    try:
        if target.repo:
            worktree = _open_worktree(settings, target.repo, eval_runs[-1])
            source = target.file
            old_text = worktree.read(target.file)
        else:
            source = str(target.local_path)
            old_text = target.local_path.read_text(encoding="utf-8")
        known = set(catalog.deployments)
        current = parse_weights(old_text, source=source, known_models=known)
        version = f"{utcnow():%Y-%m-%d}.{eval_runs[-1][-10:]}"
        fitted = fit_weights(current, rows, version=version, known_models=known)
        changes = compare(current, fitted, min_samples=min_samples)
        applied = _apply(current, [c for c in changes if c.significant], version)
        new_text = dump_weights(applied)
        parse_weights(new_text, source="the new weights", known_models=known)  # never write what won't load
        proposal = Proposal(
            changes=changes,
            impacts=routing_impact(current, applied, catalog),
            old_text=old_text,
            new_text=new_text,
            version=version,
            eval_runs=list(eval_runs),
            source=source,
        )
        if not proposal.changed:
            proposal.notes.append("no change beyond the estimates' intervals: nothing to propose")
            _ledger(record, "eval.weights_unchanged", authority, proposal)
            return proposal
        if dry_run:
            proposal.notes.append("dry run: nothing written, no pull request")
            return proposal
        if open_pr:
            assert worktree is not None and target.repo is not None
            proposal.pr = _open_pr(authority, worktree, target, proposal, pr_tools)
        else:
            _write_atomically(target.local_path, new_text)
            proposal.written = str(target.local_path)
        _ledger(record, "eval.weights_proposed", authority, proposal)
        return proposal
    finally:
        if worktree is not None:
            worktree.remove()


def _apply(current: Weights, significant: Sequence[Change], version: str) -> Weights:
    return with_estimates(current, {(c.task, c.model): c.new for c in significant}, version=version)


def _open_worktree(settings: Settings, repo: str, run_id: str) -> Any:
    from maestro.tools.workspace import Workspace
    from maestro.tools.workspace.workspace import workspace_root

    return Workspace.open(
        repo,
        root=workspace_root(settings.data_dir),
        workcell="eval",
        slug=f"routing-weights-{run_id[-10:]}",
        author=f"{settings.pr_author_name} <{settings.pr_author_email}>",
        timeout=settings.pr_git_timeout_s,
    )


def _open_pr(
    authority: Authority, worktree: Any, target: WeightsTarget, proposal: Proposal, pr_tools: Any
) -> dict[str, Any]:
    if pr_tools is None:
        raise ConfigurationError("no pull-request backend configured for the weights PR")
    backend = pr_tools.prs()
    repo = pr_tools.pr_config.repo(authority.tenant, worktree.remote_url)
    path = worktree.path / target.file
    _write_atomically(path, proposal.new_text)
    moved = [i for i in proposal.impacts if i.moved]
    title = f"Routing weights {proposal.version}: " + (
        ", ".join(f"{i.task} -> {i.new_model}" for i in moved[:3]) if moved else "re-estimated quality"
    )
    worktree.commit(title)
    existing = backend.find_open(authority, repo=repo, label=WEIGHTS_LABEL)
    if existing:  # update the open weights PR: same key, same branch
        key, branch = existing[0].idempotency_key, existing[0].branch
    else:
        key, branch = f"eval-weights:{proposal.eval_runs[-1]}", worktree.branch
    pr = backend.open_or_update(
        authority,
        repo=repo,
        source=worktree.path,
        branch=branch,
        title=title,
        body=render_body(proposal),
        labels=LABELS,
        idempotency_key=key,
    )
    result: dict[str, Any] = pr.to_dict()
    return result


def render_body(proposal: Proposal) -> str:
    """The PR body: why, what moves where, the numbers per task class, how to check and approve."""
    lines = [
        "## Routing weights from the weekly eval",
        "",
        f"Eval run(s): {', '.join(f'`{r}`' for r in proposal.eval_runs)}. "
        f"Weights version `{proposal.version}`.",
        "Only changes beyond the estimates' 95% intervals are included; everything else keeps its entry.",
        "",
        "### Where traffic moves (reference call: 1,000 prompt + 500 completion tokens)",
        "",
        "| task class | routes to (before) | routes to (after) | cost per call before | after | change |",
        "|---|---|---|---|---|---|",
    ]
    for i in proposal.impacts:
        change = f"{i.cost_change:+.1%}" if i.cost_change is not None else "n/a"
        lines.append(
            f"| {i.task} | {i.old_model} | {i.new_model} | {_usd(i.old_cost_usd)} | {_usd(i.new_cost_usd)} | "
            f"{change}{' **moved**' if i.moved else ''} |"
        )
    lines += [
        "",
        "### Estimates",
        "",
        "| task class | model | old quality (samples, interval) | new quality (samples, interval) "
        "| verdict |",
        "|---|---|---|---|---|",
    ]
    for c in proposal.changes:
        lines.append(
            f"| {c.task} | {c.model} | {_est(c.old)} | {_est(c.new)} | "
            f"{'**change**' if c.significant else 'noise (kept)'}: {c.why} |"
        )
    lines += [
        "",
        "### Review",
        "",
        "Merging needs a human with `eval:approve` and `repo:merge` (`maestro prs review ID --approve`, then "
        "`maestro prs merge ID`). Routers pick the new weights up when the merged file reaches "
        "`MAESTRO_WEIGHTS_PATH`.",
    ]
    return "\n".join(lines) + "\n"


def _est(e: Estimate) -> str:
    return f"{e.quality:.3f} ({e.samples}, [{e.interval[0]:.3f}, {e.interval[1]:.3f}])"


def _usd(value: float | None) -> str:
    return f"${value:.6f}" if value is not None else "n/a"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _ledger(record: Recorder | None, kind: str, authority: Authority, proposal: Proposal) -> None:
    if record is None:
        return
    record(
        kind,
        {
            "tenant": authority.tenant,
            "principal_id": authority.principal.id,
            "eval_runs": list(proposal.eval_runs),
            "version": proposal.version,
            "changes": [
                {
                    "task": c.task,
                    "model": c.model,
                    "old_quality": round(c.old.quality, 4),
                    "new_quality": round(c.new.quality, 4),
                    "samples": c.new.samples,
                }
                for c in proposal.significant
            ],
            "pr_id": proposal.pr["id"] if proposal.pr else None,
        },
    )
