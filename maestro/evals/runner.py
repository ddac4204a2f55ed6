"""The eval runner: every (dataset item, model) pair of a suite through its real path, stored per item.

``EvalRunner.run`` records an ``eval_runs`` row pinning each dataset's version and hash, then runs the
pairs ``concurrency`` at a time and writes each result the moment it finishes. Resuming (``run_id``)
skips the pairs already stored, so an interrupted weekly run loses at most the items in flight. A
model's failure on an item is that item's score; an exception from the environment (a sandbox that
cannot start, a graph engine that is down) is recorded as an unmeasured result with its error, and a
whole dataset whose ``prepare`` fails is recorded as unmeasured for every pair. Ledger entries:
``eval.started`` and ``eval.finished`` (counts, never item text).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from maestro.core.errors import InvalidRequest, MaestroError
from maestro.evals.data import Dataset, Item, load_items, resolve_suite
from maestro.evals.store import EvalRun, EvalStore
from maestro.evals.suites import EvalEnv, SuiteAdapter, adapter_for
from maestro.evals.types import ItemOutcome

__all__ = ["EvalRunner", "Progress", "RunSummary"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called as pairs finish (the CLI draws a bar with it)."""

Recorder = Callable[[str, dict[str, object]], None]


@dataclass(frozen=True)
class RunSummary:
    run: EvalRun
    pairs: int
    ran: int  # pairs run by this call (a resume skips what was stored)
    unmeasured: int

    def to_dict(self) -> dict[str, object]:
        return {
            "run": self.run.to_dict(),
            "pairs": self.pairs,
            "ran": self.ran,
            "unmeasured": self.unmeasured,
        }


class EvalRunner:
    def __init__(
        self,
        env: EvalEnv,
        store: EvalStore,
        *,
        record: Recorder | None = None,
        adapters: Mapping[str, SuiteAdapter] | None = None,
    ) -> None:
        self.env = env
        self.store = store
        self.record = record
        self._adapters = dict(adapters or {})

    def adapter(self, kind: str) -> SuiteAdapter:
        if kind not in self._adapters:
            self._adapters[kind] = adapter_for(kind)
        return self._adapters[kind]

    async def run(
        self,
        suite: str,
        models: Sequence[str],
        *,
        run_id: str | None = None,
        limit: int | None = None,
        concurrency: int = 2,
        progress: Progress | None = None,
        note: str | None = None,
    ) -> RunSummary:
        """Run (or resume, with ``run_id``) ``suite`` for ``models``; returns when every pair is stored."""
        if concurrency < 1:
            raise InvalidRequest("concurrency must be at least 1")
        if limit is not None and limit < 1:
            raise InvalidRequest("limit must be at least 1")
        tenant = self.env.authority.tenant
        if run_id is not None:
            run = self.store.reopen(tenant, run_id)
            suite, models = run.suite, list(run.models)
            limit = next((pin.get("limit") for pin in run.datasets.values()), None)  # as first started
        datasets = resolve_suite(suite)
        models = _check_models(models, self.env)
        items = {d.name: load_items(d)[:limit] if limit else load_items(d) for d in datasets}
        if run_id is None:
            run = self.store.create_run(
                tenant=tenant,
                suite=suite,
                models=models,
                datasets={d.name: {**d.pin(), "items": len(items[d.name]), "limit": limit} for d in datasets},
                started_by=self.env.authority.principal.id,
                note=note,
            )
            self._ledger("eval.started", run, pairs=sum(len(v) for v in items.values()) * len(models))
        done = self.store.done_keys(run.id)
        todo = [
            (d, item, m)
            for d in datasets
            for m in models
            for item in items[d.name]
            if (d.name, item.id, m) not in done
        ]
        total = sum(len(v) for v in items.values()) * len(models)
        counter = _Counter(progress, total, total - len(todo))
        try:
            unmeasured = await self._run_pairs(run.id, datasets, todo, concurrency, counter)
        except BaseException:
            self.store.finish(tenant, run.id, "failed", note="interrupted: resume with --resume " + run.id)
            raise
        finished = self.store.finish(tenant, run.id, "finished")
        self._ledger("eval.finished", finished, pairs=total, ran=len(todo), unmeasured=unmeasured)
        return RunSummary(finished, total, len(todo), unmeasured)

    async def _run_pairs(
        self,
        run_id: str,
        datasets: Sequence[Dataset],
        todo: list[tuple[Dataset, Item, str]],
        concurrency: int,
        counter: _Counter,
    ) -> int:
        unusable: dict[str, str] = {}
        for dataset in datasets:
            pending = [item for d, item, _ in todo if d.name == dataset.name]
            if not pending:
                continue
            try:
                await self.adapter(dataset.kind).prepare(self.env, dataset, pending)
            except MaestroError as exc:
                unusable[dataset.name] = f"{exc.code}: {exc.message}"
                logger.warning("eval dataset %s cannot run here: %s", dataset.name, exc.message)
        gate = asyncio.Semaphore(concurrency)
        unmeasured = 0

        async def one(dataset: Dataset, item: Item, model: str) -> None:
            nonlocal unmeasured
            async with gate:
                if dataset.name in unusable:
                    outcome = ItemOutcome(None, error=unusable[dataset.name])
                else:
                    outcome = await self._one(dataset, item, model)
            if outcome.score is None:
                unmeasured += 1
            self.store.record(
                run_id,
                dataset=dataset.name,
                item_id=item.id,
                model=model,
                task_class=dataset.task_class,
                outcome=outcome,
            )
            counter.tick(f"{dataset.name} · {model}")

        await asyncio.gather(*(one(d, item, m) for d, item, m in todo))
        return unmeasured

    async def _one(self, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        started = time.perf_counter()
        try:
            outcome = await self.adapter(dataset.kind).run(self.env, dataset, item, model)
        except MaestroError as exc:
            return ItemOutcome(
                None, latency_s=time.perf_counter() - started, error=f"{exc.code}: {exc.message}"
            )
        except Exception as exc:  # a bug in an adapter must not lose the rest of the run
            logger.exception("eval item %s/%s on %s failed", dataset.name, item.id, model)
            return ItemOutcome(None, latency_s=time.perf_counter() - started, error=type(exc).__name__)
        return outcome

    def _ledger(self, kind: str, run: EvalRun, **counts: int) -> None:
        if self.record is None:
            return
        self.record(
            kind,
            {
                "tenant": run.tenant,
                "principal_id": run.started_by,
                "eval_run_id": run.id,
                "suite": run.suite,
                "models": list(run.models),
                "datasets": {k: dict(v) for k, v in run.datasets.items()},
                **counts,
            },
        )


class _Counter:
    def __init__(self, progress: Progress | None, total: int, done: int) -> None:
        self._progress = progress
        self.total = total
        self.done = done
        if progress is not None:
            progress("starting", done, total)

    def tick(self, label: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(label, self.done, self.total)


def _check_models(models: Sequence[str], env: EvalEnv) -> list[str]:
    names = [m.strip() for m in models if m.strip()]
    if not names:
        raise InvalidRequest("name at least one model to evaluate (--models a,b)")
    if len(set(names)) != len(names):
        raise InvalidRequest("a model is named twice in --models")
    known = env.router.catalog.deployments
    unknown = [m for m in names if m not in known]
    if unknown:
        raise InvalidRequest(
            f"not in the model catalog: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return names
