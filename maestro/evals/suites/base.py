"""What every suite adapter gets (``EvalEnv``) and provides (``SuiteAdapter``).

An adapter runs one dataset item for one model through the real path of its task class - the codegen
generate step and the sandbox, the cypher workcell on a real graph, the RAG service on a real
collection - with every model call pinned to the model under test (``Authority.pinned_model``: an
override the router records like any other). The environment hands out the heavy pieces lazily
(factories), so a suite that does not need the graph engine never starts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from maestro.core.authority import Authority
from maestro.core.settings import Settings
from maestro.evals.data import Dataset, Item
from maestro.evals.types import ItemOutcome

if TYPE_CHECKING:
    from maestro.agents.repo.tooling import RepoTools
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.retrieval.answer import RagService
    from maestro.router.service import ModelRouter
    from maestro.tools.graph.catalog import GraphCatalog
    from maestro.tools.graph.types import GraphBackend
    from maestro.tools.sandbox import Sandbox


@dataclass
class EvalEnv:
    """The services a suite may use. ``authority`` is the eval principal's (it needs ``router:override``
    to pin models, plus what each suite's path checks: ``cypher.read``, ``rag:query`` ...)."""

    settings: Settings
    router: ModelRouter
    authority: Authority
    runner: Callable[[], WorkcellRunner] | None = None
    rag: Callable[[], RagService] | None = None
    graph_backend: Callable[[], GraphBackend] | None = None
    graph_catalog: Callable[[], GraphCatalog] | None = None
    sandbox: Callable[[], Sandbox] | None = None
    repo_tools: Callable[[], RepoTools] | None = None
    """The repository workcells' tools with the git PR backend whatever ``MAESTRO_PR_BACKEND`` says: the
    testgen and docs evals open their PRs on a local scratch remote (``suites.repo``)."""

    def pinned(self, model: str) -> Authority:
        """The eval authority with every model call pinned to ``model``."""
        return replace(self.authority, pinned_model=model)

    def need(self, factory: Callable[[], Any] | None, what: str) -> Any:
        if factory is None:
            from maestro.core.errors import ConfigurationError

            raise ConfigurationError(f"this eval environment has no {what}")
        return factory()


class SuiteAdapter(Protocol):
    """Runs the items of one kind of dataset (``Dataset.kind``)."""

    kind: str

    async def prepare(self, env: EvalEnv, dataset: Dataset, items: Sequence[Item]) -> None:
        """Set up what the items need (load a graph, check a collection); raise to refuse the dataset."""
        ...

    async def run(self, env: EvalEnv, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        """One item for one model. Raise only for a broken environment: a model's failure is a score."""
        ...
