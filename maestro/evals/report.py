"""``maestro eval report``: Markdown and a self-contained HTML page for one eval run.

Per task class: a table per model (quality with its 95% interval and samples, unmeasured items, mean
cost and p50 latency per item), the change since the previous finished run of the same suite (difference
of means with a bootstrap interval; a regression is a drop whose whole interval is below zero, and it is
highlighted), and a quality-vs-cost chart with the Pareto frontier (models no other model beats on both).
Charts are matplotlib SVG written inline, so the HTML page needs nothing from the network.
"""

from __future__ import annotations

import html
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro.evals.stats import Interval, bootstrap_diff, estimate
from maestro.evals.store import EvalRun, EvalStore
from maestro.evals.types import ResultRow

__all__ = ["ModelLine", "Report", "build_report", "pareto", "report_for"]


@dataclass(frozen=True)
class ModelLine:
    task: str
    model: str
    quality: Interval
    items: int
    unmeasured: int
    cost_usd_mean: float
    latency_s_p50: float | None
    delta: tuple[float, float, float] | None  # (after - before, low, high) vs the previous run

    @property
    def regression(self) -> bool:
        return self.delta is not None and self.delta[2] < 0

    @property
    def improvement(self) -> bool:
        return self.delta is not None and self.delta[1] > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "quality": self.quality.to_dict(),
            "items": self.items,
            "unmeasured": self.unmeasured,
            "cost_usd_mean": self.cost_usd_mean,
            "latency_s_p50": self.latency_s_p50,
            "delta": list(self.delta) if self.delta else None,
            "regression": self.regression,
            "frontier": False,
        }


@dataclass
class Report:
    run: EvalRun
    previous: EvalRun | None
    lines: list[ModelLine]

    @property
    def tasks(self) -> list[str]:
        return sorted({line.task for line in self.lines})

    def for_task(self, task: str) -> list[ModelLine]:
        return [line for line in self.lines if line.task == task]

    @property
    def regressions(self) -> list[ModelLine]:
        return [line for line in self.lines if line.regression]

    def to_dict(self) -> dict[str, Any]:
        frontier = {(t, m) for t in self.tasks for m in pareto(self.for_task(t))}
        lines = []
        for line in self.lines:
            doc = line.to_dict()
            doc["frontier"] = (line.task, line.model) in frontier
            lines.append(doc)
        return {
            "run": self.run.to_dict(),
            "previous_run": self.previous.id if self.previous else None,
            "lines": lines,
            "regressions": [f"{r.task}/{r.model}" for r in self.regressions],
        }

    # -- rendering ----------------------------------------------------------------------------------------

    def markdown(self) -> str:
        run = self.run
        out = [
            f"# Eval report: {run.suite} ({run.id})",
            "",
            f"Started {run.started_at:%Y-%m-%d %H:%M} UTC by `{run.started_by}`; models: "
            + ", ".join(f"`{m}`" for m in run.models)
            + ".",
            f"Compared with: `{self.previous.id}`." if self.previous else "No previous run of this suite.",
            "",
            "Datasets: "
            + ", ".join(
                f"`{n}` v{d.get('version')} ({d.get('items')} items)" for n, d in run.datasets.items()
            ),
            "",
        ]
        if self.regressions:
            out += ["**Regressions:** " + ", ".join(f"{r.task} / {r.model}" for r in self.regressions), ""]
        for task in self.tasks:
            lines = self.for_task(task)
            front = set(pareto(lines))
            out += [
                f"## {task}",
                "",
                "| model | quality | 95% interval | samples | unmeasured | cost/item | p50 latency | change "
                "| frontier |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for line in lines:
                q = line.quality
                out.append(
                    f"| {line.model} | {_num(q.mean)} | {_interval(q)} | {q.samples} | {line.unmeasured} | "
                    f"${line.cost_usd_mean:.6f} | {_secs(line.latency_s_p50)} | {_delta(line)} | "
                    f"{'yes' if line.model in front else ''} |"
                )
            out.append("")
        return "\n".join(out) + "\n"

    def html(self) -> str:
        run = self.run
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Eval report {html.escape(run.id)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Eval report: {html.escape(run.suite)} <small>{html.escape(run.id)}</small></h1>",
            f"<p>Started {run.started_at:%Y-%m-%d %H:%M} UTC by <code>{html.escape(run.started_by)}</code>. "
            + (
                f"Compared with <code>{html.escape(self.previous.id)}</code>."
                if self.previous
                else "No previous run of this suite."
            )
            + "</p>",
        ]
        if self.regressions:
            items = "".join(
                f"<li>{html.escape(r.task)} / {html.escape(r.model)}</li>" for r in self.regressions
            )
            parts.append(f"<div class='regress'><strong>Regressions</strong><ul>{items}</ul></div>")
        for task in self.tasks:
            lines = self.for_task(task)
            front = set(pareto(lines))
            parts.append(f"<h2>{html.escape(task)}</h2>")
            parts.append(frontier_svg(task, lines))
            parts.append(
                "<table><tr><th>model</th><th>quality</th><th>95% interval</th><th>samples</th>"
                "<th>unmeasured</th><th>cost/item</th><th>p50 latency</th><th>change</th></tr>"
            )
            for line in lines:
                q = line.quality
                css = (
                    " class='regress'" if line.regression else (" class='better'" if line.improvement else "")
                )
                star = " ★" if line.model in front else ""
                parts.append(
                    f"<tr{css}><td>{html.escape(line.model)}{star}</td><td>{_num(q.mean)}</td>"
                    f"<td>{_interval(q)}</td><td>{q.samples}</td><td>{line.unmeasured}</td>"
                    f"<td>${line.cost_usd_mean:.6f}</td><td>{_secs(line.latency_s_p50)}</td>"
                    f"<td>{html.escape(_delta(line))}</td></tr>"
                )
            parts.append("</table><p class='note'>★ on the quality/cost frontier.</p>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<run>.md`` and ``<run>.html`` into ``directory`` (atomically); returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        md = directory / f"{self.run.id}.md"
        page = directory / f"{self.run.id}.html"
        for path, text in ((md, self.markdown()), (page, self.html())):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return md, page


def build_report(
    run: EvalRun, rows: Sequence[ResultRow], previous: tuple[EvalRun, Sequence[ResultRow]] | None
) -> Report:
    """The report of ``run`` (its result rows), compared with ``previous`` (a run and its rows) if given."""
    groups = _group(rows)
    before = _group(previous[1]) if previous else {}
    lines = []
    for (task, model), items in sorted(groups.items()):
        scores = [r.score for r in items]
        latencies = [r.latency_s for r in items if r.latency_s is not None]
        old = before.get((task, model))
        lines.append(
            ModelLine(
                task=task,
                model=model,
                quality=estimate(scores),
                items=len(items),
                unmeasured=sum(1 for s in scores if s is None),
                cost_usd_mean=sum(r.cost_usd for r in items) / len(items),
                latency_s_p50=statistics.median(latencies) if latencies else None,
                delta=bootstrap_diff([r.score for r in old], scores) if old else None,
            )
        )
    return Report(run, previous[0] if previous else None, lines)


def report_for(store: EvalStore, tenant: str, run: EvalRun) -> Report:
    """The report of a stored run, compared with the previous finished run of its suite."""
    previous = store.previous_finished(tenant, run)
    before = (previous, store.results(tenant, previous.id)) if previous else None
    return build_report(run, store.results(tenant, run.id), before)


def pareto(lines: Sequence[ModelLine]) -> list[str]:
    """Models on the quality/cost frontier: no other model is at least as good and as cheap, and better
    or cheaper. Unmeasured models are not on it."""
    measured = [line for line in lines if line.quality.mean is not None]
    front = []
    for a in measured:
        qa = a.quality.mean or 0.0
        dominated = any(
            (b.quality.mean or 0.0) >= qa
            and b.cost_usd_mean <= a.cost_usd_mean
            and ((b.quality.mean or 0.0) > qa or b.cost_usd_mean < a.cost_usd_mean)
            for b in measured
            if b is not a
        )
        if not dominated:
            front.append(a.model)
    return front


def frontier_svg(task: str, lines: Sequence[ModelLine]) -> str:
    """Quality (with its interval) against mean cost per item, frontier joined; an inline ``<svg>``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    measured = [line for line in lines if line.quality.mean is not None]
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    front = set(pareto(measured))
    for line in measured:
        q = line.quality
        assert q.mean is not None and q.low is not None and q.high is not None
        on = line.model in front
        ax.errorbar(
            [line.cost_usd_mean],
            [q.mean],
            yerr=[[q.mean - q.low], [q.high - q.mean]],
            fmt="o" if on else "s",
            color="#1f6feb" if on else "#8b949e",
            capsize=3,
        )
        ax.annotate(
            line.model, (line.cost_usd_mean, q.mean), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    ordered = sorted((line for line in measured if line.model in front), key=lambda x: x.cost_usd_mean)
    if len(ordered) > 1:
        ax.plot(
            [x.cost_usd_mean for x in ordered],
            [x.quality.mean or 0.0 for x in ordered],
            "--",
            color="#1f6feb",
        )
    ax.set_xlabel("mean cost per item (USD)")
    ax.set_ylabel("quality")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{task}: quality vs cost")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _group(rows: Sequence[ResultRow]) -> dict[tuple[str, str], list[ResultRow]]:
    groups: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[(row.task_class, row.model)].append(row)
    return groups


def _num(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "unmeasured"


def _interval(q: Interval) -> str:
    return f"[{q.low:.3f}, {q.high:.3f}]" if q.low is not None and q.high is not None else "-"


def _secs(value: float | None) -> str:
    return f"{value:.2f}s" if value is not None else "-"


def _delta(line: ModelLine) -> str:
    if line.delta is None:
        return "new" if line.quality.samples else "-"
    diff, low, high = line.delta
    tag = " REGRESSION" if line.regression else (" better" if line.improvement else "")
    return f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]{tag}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1f2328}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;padding:.3rem .6rem}
th{background:#f6f8fa}tr.regress td{background:#ffebe9}tr.better td{background:#dafbe1}
div.regress{border:1px solid #cf222e;background:#ffebe9;padding:.5rem 1rem;margin:1rem 0}
small{color:#656d76;font-weight:normal}.note{color:#656d76;font-size:.85rem}svg{max-width:100%;height:auto}
"""
