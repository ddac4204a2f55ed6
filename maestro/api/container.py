"""The composition root for the API and the CLI: every service built once from ``Settings``."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from maestro.api.metrics import Metrics
from maestro.core.apikeys import ApiKeyStore
from maestro.core.approvals import ApprovalStore
from maestro.core.authn import Authenticator
from maestro.core.authorize import Authorizer
from maestro.core.ledger import Ledger, load_signing_key
from maestro.core.oidc import OIDCVerifier
from maestro.core.policy import LazyPolicyEngine, build_policy_engine
from maestro.core.principals import PrincipalStore
from maestro.core.settings import Settings
from maestro.router.factory import build_router, open_state_db
from maestro.router.privacy import PrivacyFilter
from maestro.router.service import ModelRouter
from maestro.router.types import LLMClient
from maestro.tools.pii import PIIGuard, PIIPromptGuard
from maestro.tools.pii.quick import QuickRedactor

if TYPE_CHECKING:
    from maestro.agents.repo.tooling import RepoTools
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.core.authority import Authority
    from maestro.evals.runner import EvalRunner
    from maestro.retrieval.answer import RagService
    from maestro.retrieval.embeddings import Embedder
    from maestro.retrieval.factory import RetrievalStack
    from maestro.retrieval.ingest import Ingestor
    from maestro.tools.graph.access import GraphAccess, TenantRateLimit
    from maestro.tools.graph.catalog import GraphCatalog
    from maestro.tools.graph.types import GraphBackend
    from maestro.tools.workspace import Worktree
    from maestro.workers.dispatch import RunDispatcher


BLOCKED_PII_IN_DIFFS = frozenset(
    {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "US_PASSPORT", "UK_NHS"}
)
"""Personal data a repository change may not add (names and IP addresses are too common in code)."""


@dataclass
class Services:
    """Everything the routes and commands need."""

    settings: Settings
    engine: Engine
    router: ModelRouter
    pii: PIIGuard
    principals: PrincipalStore
    api_keys: ApiKeyStore
    authenticator: Authenticator
    ledger: Ledger
    authorizer: Authorizer
    approvals: ApprovalStore
    metrics: Metrics | None = None
    _retrieval: RetrievalStack | None = field(default=None, repr=False)
    _retrieval_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _graph: GraphBackend | None = field(default=None, repr=False)
    _graph_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rate_limit: TenantRateLimit | None = field(default=None, repr=False)

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        """Append a ledger entry whose tenant and actor come from the payload."""
        _append(self.ledger, kind, payload)

    def retrieval(self) -> RetrievalStack:
        """The vector store, embedder and retriever, opened on first use (Qdrant Edge locks its data dir)."""
        with self._retrieval_lock:
            if self._retrieval is None:
                from maestro.retrieval.factory import open_retrieval

                self._retrieval = open_retrieval(self.settings)
            return self._retrieval

    def rag(self) -> RagService:
        from maestro.retrieval.answer import RagService

        stack = self.retrieval()
        return RagService(
            stack.retriever,
            self.router,
            self.authorizer,
            verifier=stack.verifier,
            record=self.record,
            suspect=self.settings.rag_suspect_chunks,
            structured=self.settings.rag_structured,
        )

    def ingestor(self) -> Ingestor:
        """An ingestor whose chunks are flagged by this deployment's PII guard."""
        guard = self.pii

        def detect(texts: Sequence[str]) -> list[bool]:
            return [bool(found) for found in guard.scan_many(texts)]

        return self.retrieval().ingestor(pii_detector=detect)

    def graph(self) -> GraphBackend:
        """The graph engine (embedded FalkorDB unless MAESTRO_GRAPH_URL names a server), opened lazily."""
        with self._graph_lock:
            if self._graph is None:
                from maestro.tools.graph.factory import open_graph

                self._graph = open_graph(self.settings)
            return self._graph

    def graph_catalog(self) -> GraphCatalog:
        """The tenant -> graph mapping (which graphs a tenant has, and their physical keys)."""
        from maestro.tools.graph.catalog import GraphCatalog

        return GraphCatalog(self.engine)

    def graph_access(self) -> GraphAccess:
        """Graph reads under a run's authority: catalog, policy, guard, per-tenant rate limit, RO engine."""
        from maestro.tools.cypher import CypherGuard
        from maestro.tools.graph.access import GraphAccess, TenantRateLimit

        with self._graph_lock:
            if self._rate_limit is None:
                broker = self.settings.broker_url or ""
                shared = broker if broker.startswith(("redis://", "rediss://")) else "memory://"
                self._rate_limit = TenantRateLimit(self.settings.cypher_rate_per_minute, storage_url=shared)
        return GraphAccess(
            self.graph,
            self.graph_catalog(),
            self.authorizer,
            guard=CypherGuard(max_hops=self.settings.graph_max_hops, row_cap=self.settings.graph_row_cap),
            rate_limit=self._rate_limit,
            timeout_ms=self.settings.graph_timeout_ms,
            row_cap=self.settings.graph_row_cap,
            cost_threshold=self.settings.cypher_cost_threshold,
        )

    def workcell_tools(self) -> dict[str, Any]:
        """What workcell nodes find in ``ctx.tools`` (built lazily: the graph engine opens on first use)."""
        return {
            "graph": self.graph_access(),
            "cypher_repairs": self.settings.cypher_repairs,
            "repo": self.repo_tools(),
        }

    def repo_tools(self, *, backend: str | None = None) -> RepoTools:
        """Worktrees, the sandbox, the diff guard and the PR port for the repository workcells
        (``backend``: this PR backend instead of ``MAESTRO_PR_BACKEND``'s)."""
        from maestro.agents.repo.tooling import RepoTools
        from maestro.tools.pii.entities import SECRET_ENTITIES
        from maestro.tools.prs.config import PRConfig
        from maestro.tools.prs.factory import build_pr_backend
        from maestro.tools.sandbox import Sandbox, SandboxConfig
        from maestro.tools.workspace import workspace_root

        settings = self.settings
        pr_config = PRConfig.from_settings(settings)
        hidden = (*SandboxConfig().hidden, settings.data_dir.resolve())
        guard = self.pii
        return RepoTools(
            workspace_root=workspace_root(settings.data_dir),
            sandbox=Sandbox(SandboxConfig(hidden=hidden)),
            prs=lambda: build_pr_backend(
                pr_config, engine=self.engine, authorizer=self.authorizer, record=self.record, backend=backend
            ),
            pr_config=pr_config,
            scan=lambda text: guard.scan(text),
            rounds=settings.repo_rounds,
            approval=settings.repo_approval,
            test_timeout_s=settings.sandbox_timeout_s,
            blocked_entities=SECRET_ENTITIES | BLOCKED_PII_IN_DIFFS,
            ledger_ids=self.run_ledger_ids,
            code_search=self.search_code,
        )

    def search_code(self, worktree: Worktree, query: str, tenant: str, k: int) -> list[str]:
        """Index ``worktree`` in its repository's collection (incrementally); rank files for ``query``."""
        from maestro.retrieval.search import SearchOptions
        from maestro.tools.workspace import index_repository

        collection = "repo-" + hashlib.sha256(worktree.remote_url.encode()).hexdigest()[:16]
        stack = self.retrieval()
        index_repository(worktree, stack.ingestor(), collection, tenant)  # code: no PII scan of chunks
        hits = stack.retriever.search(
            collection, query, tenant=tenant, options=SearchOptions(k=max(k * 3, 10))
        )
        ranked: list[str] = []
        for hit in hits:
            if hit.chunk.source not in ranked:
                ranked.append(hit.chunk.source)
        return ranked[:k]

    def run_ledger_ids(self, tenant: str, run_id: str) -> list[str]:
        """The ids (``index:leaf-hash prefix``) of a run's ledger entries among the tenant's recent ones."""
        entries = self.ledger.entries(tenant=tenant, limit=1000)
        return [f"{e.idx}:{e.leaf_hash[:12]}" for e in reversed(entries) if e.payload.get("run_id") == run_id]

    def runner(self) -> WorkcellRunner:
        """Runs workcells under an authority, with checkpoints, approvals, effects and events."""
        from maestro.agents.runtime.runner import WorkcellRunner
        from maestro.agents.runtime.store import RunStore

        ledger = self.ledger

        def record(kind: str, payload: dict[str, Any], /, *, conn: Any = None) -> None:
            """A run's ledger entry, in the transaction that writes the run when ``conn`` is given."""
            actor = payload.get("principal_id") or payload.get("decided_by") or payload.get("requested_by")
            ledger.append(kind, payload, tenant=payload.get("tenant"), actor=actor, conn=conn)

        return WorkcellRunner(
            self.settings,
            router=self.router,
            runs=RunStore(self.engine),
            approvals=self.approvals,
            authorizer=self.authorizer,
            record=record,
            tools=self.workcell_tools(),
        )

    def eval_authority(self, tenant: str | None = None) -> Authority:
        """The eval harness's own principal: a bot (roles ``bot`` + ``mlops``, so ``eval:run`` but never
        ``eval:approve``) in ``tenant``. It opens weights PRs; a human approves and merges them."""
        from maestro.core.authority import Authority, Principal
        from maestro.core.roles import scopes_for

        scopes = scopes_for(["bot", "mlops"], kind="bot")
        principal = Principal(
            id="eval-harness",
            tenant=tenant or self.settings.default_tenant,
            name="eval-harness",
            kind="bot",
            roles=("bot", "mlops"),
            scopes=scopes,
        )
        return Authority(principal=principal, scopes=scopes, clearance="internal")

    def eval_runner(self, authority: Authority) -> EvalRunner:
        """The eval runner under ``authority`` with every service a suite may need (opened lazily)."""
        from functools import cache

        from maestro.evals.humaneval import LIMITS
        from maestro.evals.runner import EvalRunner
        from maestro.evals.store import EvalStore
        from maestro.evals.suites import EvalEnv
        from maestro.tools.sandbox import Sandbox, SandboxConfig

        hidden = (*SandboxConfig().hidden, self.settings.data_dir.resolve())
        env = EvalEnv(
            settings=self.settings,
            router=self.router,
            authority=authority,
            runner=cache(self.runner),
            rag=cache(self.rag),
            graph_backend=self.graph,
            graph_catalog=self.graph_catalog,
            sandbox=cache(lambda: Sandbox(SandboxConfig(limits=LIMITS, hidden=hidden))),
            repo_tools=lambda: self.repo_tools(backend="git"),  # PRs on the repo evals' scratch remote
        )
        return EvalRunner(env, EvalStore(self.engine), record=self.record)

    def dispatcher(self, *, background: bool = False) -> RunDispatcher:
        """How queued runs execute: on Celery workers when MAESTRO_BROKER_URL is set (its configuration is
        checked here), else in this process (``background``: as asyncio tasks, for the API server)."""
        from maestro.workers.dispatch import build_dispatcher

        return build_dispatcher(self.settings, self.runner(), background=background)

    def close(self) -> None:
        """Flush what the router still queues, close the vector store, dispose of the DB pool."""
        self.router.close()
        with self._retrieval_lock:
            if self._retrieval is not None:
                self._retrieval.close()
                self._retrieval = None
        with self._graph_lock:
            if self._graph is not None:
                self._graph.close()
                self._graph = None
        self.engine.dispose()


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    client: LLMClient | None = None,
    metrics: Metrics | None = None,
    eager_policy: bool = True,
) -> Services:
    """Open (and migrate) the state DB and wire the router, stores and authenticator to it."""
    engine = engine if engine is not None else open_state_db(settings)
    api_keys = ApiKeyStore(engine)
    signing_key = load_signing_key(settings)
    pii_key = _derived_key(signing_key, b"maestro-pii-hash")
    guard = PIIGuard(hash_key=pii_key)  # spaCy loads on the first scan, not here
    # Ledger strings are ids and short labels: the regex redactor keeps secrets and contact data out of
    # the evidence without loading an NLP stack on every append.
    ledger = Ledger(engine, signing_key, redact=QuickRedactor(hash_key=pii_key).redact)
    router = build_router(
        settings,
        engine=engine,
        client=client,
        observer=metrics.observe_outcome if metrics is not None else None,
        ledger=ledger,
        privacy=PrivacyFilter(PIIPromptGuard(guard), mode=settings.pii_mode),
        prompt_embedder=_prompt_embedder(settings),
    )

    def record(kind: str, payload: dict[str, Any]) -> None:
        _append(ledger, kind, payload)

    engine_policy = (
        build_policy_engine(settings)
        if eager_policy
        else LazyPolicyEngine(lambda: build_policy_engine(settings))  # CLI: built only if a command asks
    )
    authorizer = Authorizer(engine_policy, record=record)
    return Services(
        settings=settings,
        engine=engine,
        router=router,
        pii=guard,
        principals=PrincipalStore(engine),
        api_keys=api_keys,
        authenticator=Authenticator(api_keys, OIDCVerifier.from_settings(settings)),
        ledger=ledger,
        authorizer=authorizer,
        approvals=ApprovalStore(engine, authorizer=authorizer, record=record),
        metrics=metrics,
    )


def _prompt_embedder(settings: Settings) -> Embedder | None:
    """What the prompt router embeds prompts with, when MAESTRO_PROMPT_ROUTER_PATH is set: the retrieval
    embedder (MiniLM loads on the first prompt; prompts are embedded uncached, so none is stored)."""
    if settings.prompt_router_path is None:
        return None
    from maestro.retrieval.embeddings import HashingEmbedder, MiniLMEmbedder

    return HashingEmbedder() if settings.embedder == "hashing" else MiniLMEmbedder()


def _append(ledger: Ledger, kind: str, payload: dict[str, Any]) -> None:
    actor = payload.get("principal_id") or payload.get("decided_by") or payload.get("requested_by")
    ledger.append(kind, payload, tenant=payload.get("tenant"), actor=actor)


def _derived_key(signing_key: Ed25519PrivateKey, purpose: bytes) -> bytes:
    """A per-purpose secret derived from the deployment's ledger key (stable across processes)."""
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(purpose + b"\0" + raw).digest()
