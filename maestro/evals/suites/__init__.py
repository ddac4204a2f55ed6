"""Suite adapters: how each kind of dataset item is run and scored (see ``base``)."""

from __future__ import annotations

from maestro.core.errors import ConfigurationError
from maestro.evals.suites.base import EvalEnv, SuiteAdapter

__all__ = ["EvalEnv", "SuiteAdapter", "adapter_for"]


def adapter_for(kind: str) -> SuiteAdapter:
    """The adapter for a dataset kind (imported on demand: each pulls in its own path)."""
    if kind == "humaneval":
        from maestro.evals.suites.humaneval import HumanEvalSuite

        return HumanEvalSuite()
    if kind == "cypher":
        from maestro.evals.suites.cypher import CypherSuite

        return CypherSuite()
    if kind == "rag":
        from maestro.evals.suites.rag import RagSuite

        return RagSuite()
    if kind in ("testgen", "docs"):
        from maestro.evals.suites.repo import RepoSuite

        return RepoSuite(kind)
    raise ConfigurationError(
        f"no suite adapter for dataset kind '{kind}' (known: humaneval, cypher, rag, testgen, docs)"
    )
