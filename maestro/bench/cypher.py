"""``maestro bench cypher``: the Cypher guard's cost, graph query latency at scale, the runner's overhead.

Three parts, each with its baseline measured in the same run:

* **Guard** (``guard_*``): :class:`~maestro.tools.cypher.CypherGuard` ``check`` latency over the eval
  set's gold queries, the few-shot examples and the red-team suite (``tests/tools/data/cypher_redteam.jsonl``
  when the repository is at hand, else a built-in mix of reads and writes). Baseline: a naive regex
  keyword check (``WRITE_KEYWORDS``) on the same queries; on the red-team suite both verdicts are also
  scored against the expected ones (``*_redteam_accuracy``). Target: guard p95 <= 1 ms.
* **Graph** (``graph_*``): a generated graph (100k ``:Node`` / 1M ``:LINK``; ``quick``: 10k / 100k) with
  a skewed degree distribution (log-normal out-degrees, 70% of targets drawn Zipf-like from a shuffled
  ranking so a few hubs have thousands of in-links, 30% uniform), loaded with ``write_many`` in UNWIND
  batches after an index on ``:Node(id)``. Then 1-, 2- and 3-hop ``count(DISTINCT m)`` queries from
  seeded random anchors through ``query_readonly`` (``GRAPH.RO_QUERY``, row conversion included).
  Baseline: the same queries as plain ``GRAPH.QUERY`` on a raw ``falkordb`` client to the same server
  (``raw_query_*``), and ``GRAPH.RO_QUERY`` on that raw client (``raw_ro_*``) to separate the read-only
  mode from the backend's own cost. Targets: 1-hop p95 <= 30 ms, 3-hop p95 <= 120 ms.
  The graph lives in its own data dir, ``<data_dir>/bench-cypher`` (its own embedded server; with
  ``MAESTRO_GRAPH_URL`` set, the graph ``maestro-bench-<nodes>`` on that server). It is **kept**: a
  ``:BenchMeta`` node records its size and seed, and a later run with the same size reuses it instead
  of regenerating (``graph_reused`` = 1); after a fresh load the embedded server's append-only file is
  rewritten as a snapshot (``graph_compact_s``) so that the next start reads the graph back quickly
  instead of replaying every batch. Delete the directory (or the graph) to reclaim the space.
* **Runtime** (``runtime_*``): what the workcell runtime adds around a graph. A 3-node workcell (plan ->
  model -> answer) with a scripted model (:class:`~maestro.router.testing.FunctionLLM`, no latency) run
  through :class:`~maestro.agents.runtime.runner.WorkcellRunner` (authorisation, the run record and its
  status transitions, numbered events, the effect/approval machinery, ledger entries, checkpoints), in a
  temporary data dir, with the runner built as a server builds it (one router, one policy engine, one
  state DB for the process; with ``MAESTRO_PROMPT_ROUTER_PATH`` set, its router scores prompts with that
  file, ``prompt_router_configured`` = 1). Baseline: the same three nodes as a bare LangGraph graph
  compiled once with the same checkpointer type (``AsyncSqliteSaver``, same pragmas) whose model node
  makes **the same routed call** the runner's context makes: ``ModelRouter.complete(RouteRequest...)`` on
  the same router and scripted client. The model call and the router (routing decision, budget
  reservation, settlement, its ledger entry) are therefore on both sides and cancel out: the router has
  its own bench (``maestro bench router``); this ratio measures the runtime alone. Runner and baseline
  runs alternate (after three warm-up runs each), so machine noise hits both alike. Both sides pay what a
  long-lived process pays per run, no more and no less: the runner's compiled-graph cache and open
  checkpointer are per process (a server has them after its first run; the CLI pays them once per
  command, outside this measure), and the baseline compiles its graph once. The runner is measured
  through ``WorkcellRunner.start`` (the run is recorded already claimed and starts from its input); a run
  submitted through a dispatcher (``prepare`` then ``advance``: the API, ``maestro run``) also pays the
  ``queued -> running`` claim and a read of its thread's last checkpoint, about 2 ms more. Target: runner
  p50 / bare p50 <= 1.5; ``runtime_overhead_p50_ms`` is the difference in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from maestro.bench.report import BenchReport, percentile
from maestro.core.settings import Settings
from maestro.tools.cypher import CypherGuard
from maestro.tools.graph import GraphBackend, open_graph

__all__ = ["REDTEAM_PATH", "WRITE_KEYWORDS", "bench_cypher", "generate_edges", "naive_check"]

REDTEAM_PATH = Path(__file__).resolve().parents[2] / "tests/tools/data/cypher_redteam.jsonl"
WRITE_KEYWORDS = re.compile(r"\b(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|CALL|LOAD|FOREACH)\b", re.I)
FALLBACK_QUERIES = (
    ("MATCH (s:Service) RETURN s.name LIMIT 10", True),
    ("MATCH (n) DETACH DELETE n", False),
    ("MATCH (s:Service {name: 'x'})-[:DEPENDS_ON*1..3]->(d) RETURN DISTINCT d.name", True),
    ("CREATE (n:Evil) RETURN n", False),
    ("MATCH (s:Service) SET s.owner = 'mallory' RETURN s", False),
    ("MATCH (s:Service) WHERE s.name = 'CREATE' RETURN s", True),
    ("MATCH (s:Service) RETURN s // DELETE everything", True),
    ("MATCH (a)-[*]->(b) RETURN count(b)", True),
    ("CALL db.labels()", True),
    ("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", False),
    ("MATCH (t:Team) RETURN t.name UNION MATCH (p:Person) RETURN p.name", True),
    ("MATCH (n) WITH n MERGE (m:Copy {id: id(n)}) RETURN m", False),
)
SEED = 20_241_105
GRAPH_SIZE = (100_000, 1_000_000)
QUICK_GRAPH_SIZE = (10_000, 100_000)
BATCH = 10_000
ANCHORS, QUICK_ANCHORS = 300, 60
RUNS, QUICK_RUNS = 60, 12
GUARD_PASSES, QUICK_GUARD_PASSES = 20, 3
HOP_QUERIES = {
    "1hop": "MATCH (a:Node {id: $id})-[:LINK]->(m:Node) RETURN count(DISTINCT m) AS n",
    "2hop": "MATCH (a:Node {id: $id})-[:LINK*1..2]->(m:Node) RETURN count(DISTINCT m) AS n",
    "3hop": "MATCH (a:Node {id: $id})-[:LINK*1..3]->(m:Node) RETURN count(DISTINCT m) AS n",
}
RUNTIME_WORKCELL = "bench-plan-answer"


def naive_check(query: str) -> bool:
    """The baseline guard: allow unless a write keyword appears anywhere (strings and comments included)."""
    return WRITE_KEYWORDS.search(query) is None


def bench_cypher(settings: Settings, *, quick: bool = False) -> BenchReport:
    """Run the three parts; ``quick``: a 10k/100k graph and fewer repetitions."""
    report = BenchReport("cypher")
    started = time.perf_counter()
    with _progress() as bar:
        _bench_guard(report, bar, passes=QUICK_GUARD_PASSES if quick else GUARD_PASSES)
        _bench_graph(report, bar, settings, quick=quick)
        _bench_runtime(report, bar, settings, runs=QUICK_RUNS if quick else RUNS)
    report.metrics["bench_s"] = time.perf_counter() - started
    report.metrics["prompt_router_configured"] = float(settings.prompt_router_path is not None)
    return report


# -- the guard ----------------------------------------------------------------------------------------


Labelled = list[tuple[str, dict[str, Any] | None, bool]]


def _guard_queries() -> tuple[list[tuple[str, dict[str, Any] | None]], Labelled]:
    """Every (query, params) to time, and the labelled red-team subset (query, params, expected)."""
    datasets = resources.files("maestro.evals").joinpath("datasets", "cypher_sample.jsonl")
    examples = resources.files("maestro.agents.cypher").joinpath("examples.jsonl")
    queries = [json.loads(line)["gold_cypher"] for line in _lines(datasets.read_text(encoding="utf-8"))]
    if examples.is_file():
        queries += [json.loads(line)["cypher"] for line in _lines(examples.read_text(encoding="utf-8"))]
    if REDTEAM_PATH.is_file():
        rows = [json.loads(line) for line in _lines(REDTEAM_PATH.read_text(encoding="utf-8"))]
        labelled: Labelled = [
            (r["query"], r.get("params"), bool(r["allowed"])) for r in rows if isinstance(r.get("query"), str)
        ]
    else:
        labelled = [(q, None, allowed) for q, allowed in FALLBACK_QUERIES]
    return [(q, None) for q in queries] + [(q, p) for q, p, _ in labelled], labelled


def _bench_guard(report: BenchReport, bar: Progress, *, passes: int) -> None:
    queries, labelled = _guard_queries()
    guard = CypherGuard()
    sides: dict[str, Callable[[str, Any], object]] = {
        "guard": guard.check,
        "regex": lambda q, p: naive_check(q),
    }
    samples: dict[str, list[float]] = {"guard": [], "regex": []}
    task = bar.add_task("Cypher guard vs regex", total=passes)
    for _ in range(passes):
        for name, check in sides.items():
            out = samples[name]
            for query, params in queries:
                t0 = time.perf_counter()
                check(query, params)
                out.append((time.perf_counter() - t0) * 1000)
        bar.advance(task)
    bar.remove_task(task)
    for pct in (50, 95, 99):
        report.metrics[f"guard_p{pct}_ms"] = percentile(samples["guard"], pct)
        report.baseline[f"regex_p{pct}_ms"] = percentile(samples["regex"], pct)
    report.metrics["guard_queries"] = float(len(queries))
    report.metrics["guard_vs_regex_p50_ratio"] = report.metrics["guard_p50_ms"] / max(
        report.baseline["regex_p50_ms"], 1e-6
    )
    report.metrics["guard_redteam_accuracy"] = _accuracy(lambda q, p: guard.check(q, p).allowed, labelled)
    report.baseline["regex_redteam_accuracy"] = _accuracy(lambda q, p: naive_check(q), labelled)
    report.target("guard_p95_ms", report.metrics["guard_p95_ms"], at_most=1.0)


def _accuracy(allowed: Callable[[str, Any], bool], labelled: Labelled) -> float:
    return sum(allowed(q, p) == expected for q, p, expected in labelled) / max(1, len(labelled))


# -- the generated graph --------------------------------------------------------------------------------


def generate_edges(nodes: int, edges: int, seed: int = SEED) -> list[tuple[int, int]]:
    """``edges`` directed (source, target) pairs over ids ``0..nodes-1``, deterministic for a seed:
    log-normal out-degrees; targets 70% Zipf-like over a shuffled ranking (hubs), 30% uniform; no loops."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(nodes)]
    scale = edges / sum(weights)
    degrees = [int(w * scale) for w in weights]
    for i in rng.sample(range(nodes), edges - sum(degrees)):  # hand out the rounding remainder
        degrees[i] += 1
    ranking = list(range(nodes))
    rng.shuffle(ranking)
    cumulative: list[float] = []
    total = 0.0
    for rank in range(1, nodes + 1):
        total += 1.0 / rank
        cumulative.append(total)
    hubs = iter(rng.choices(ranking, cum_weights=cumulative, k=edges))
    pairs: list[tuple[int, int]] = []
    for source, degree in enumerate(degrees):
        for _ in range(degree):
            target = next(hubs) if rng.random() < 0.7 else rng.randrange(nodes)
            if target == source:
                target = (source + 1) % nodes
            pairs.append((source, target))
    return pairs


def _bench_graph(report: BenchReport, bar: Progress, settings: Settings, *, quick: bool) -> None:
    nodes, edges = QUICK_GRAPH_SIZE if quick else GRAPH_SIZE
    graph = f"maestro-bench-{nodes}"
    graph_settings = (
        settings
        if settings.graph_url
        else settings.model_copy(update={"data_dir": settings.data_dir / "bench-cypher"})
    )
    backend = open_graph(graph_settings)
    try:
        reused = _ensure_graph(report, bar, backend, graph, nodes, edges)
        report.metrics.update({"graph_nodes": float(nodes), "graph_edges": float(edges)})
        report.metrics["graph_reused"] = 1.0 if reused else 0.0
        anchors = random.Random(SEED + 1).sample(range(nodes), QUICK_ANCHORS if quick else ANCHORS)
        with _raw_client(graph_settings, backend) as raw:
            if not reused and raw is not None and not settings.graph_url:
                report.metrics["graph_compact_s"] = _compact_aof(raw)
            _hop_latency(report, bar, backend, raw, graph, anchors)
    finally:
        backend.close()


def _ensure_graph(
    report: BenchReport, bar: Progress, backend: GraphBackend, graph: str, nodes: int, edges: int
) -> bool:
    """Reuse the graph when its ``:BenchMeta`` matches; else (re)generate and load it."""
    meta = "MATCH (b:BenchMeta) RETURN b.nodes AS nodes, b.edges AS edges, b.seed AS seed"
    if graph in backend.graphs():
        rows = backend.query_readonly(graph, meta, timeout_ms=10_000, row_cap=2).rows
        if rows == [[nodes, edges, SEED]]:
            return True
        backend.delete_graph(graph)
    t0 = time.perf_counter()
    pairs = generate_edges(nodes, edges)
    report.metrics["graph_generate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    backend.write(graph, "CREATE INDEX FOR (n:Node) ON (n.id)")
    task = bar.add_task(f"loading {nodes:,} nodes / {edges:,} edges", total=nodes + edges)
    for start in range(0, nodes, BATCH):
        ids = list(range(start, min(nodes, start + BATCH)))
        backend.write_many(graph, [("UNWIND $ids AS i CREATE (:Node {id: i})", {"ids": ids})])
        bar.advance(task, len(ids))
    link = "UNWIND $pairs AS p MATCH (a:Node {id: p[0]}), (b:Node {id: p[1]}) CREATE (a)-[:LINK]->(b)"
    for start in range(0, edges, BATCH):
        batch = [list(p) for p in pairs[start : start + BATCH]]
        backend.write_many(graph, [(link, {"pairs": batch})])
        bar.advance(task, len(batch))
    bar.remove_task(task)
    backend.write(
        graph, "CREATE (:BenchMeta {nodes: $n, edges: $e, seed: $s})", {"n": nodes, "e": edges, "s": SEED}
    )
    spent = time.perf_counter() - t0
    report.metrics["graph_load_s"] = spent
    report.metrics["graph_load_edges_per_s"] = edges / spent
    return False


@contextmanager
def _raw_client(settings: Settings, backend: GraphBackend) -> Iterator[Any]:
    """A plain ``falkordb`` client to the server ``backend`` uses (None for a non-FalkorDB backend)."""
    if not backend.name.startswith("falkordb"):
        yield None
        return
    from falkordb import FalkorDB  # type: ignore[import-untyped]

    if settings.graph_url:
        client = FalkorDB.from_url(settings.graph_url)
    else:
        from maestro.tools.graph.embedded import EmbeddedFalkorServer

        client = FalkorDB(unix_socket_path=str(EmbeddedFalkorServer(settings.data_dir).ensure()))
    try:
        yield client
    finally:
        client.connection.close()


def _compact_aof(raw: Any) -> float:
    """Rewrite the embedded server's append-only file as a snapshot: without it the next start replays
    every load batch (minutes at 1M edges) instead of reading the graph back in seconds."""
    t0 = time.perf_counter()
    raw.connection.execute_command("BGREWRITEAOF")
    while True:
        time.sleep(0.1)
        info = raw.connection.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return time.perf_counter() - t0


def _hop_latency(
    report: BenchReport, bar: Progress, backend: GraphBackend, raw: Any, graph: str, anchors: list[int]
) -> None:
    ways: dict[str, Callable[[str, Mapping[str, Any]], object]] = {
        "graph": lambda q, p: backend.query_readonly(graph, q, p, timeout_ms=30_000, row_cap=1_000),
    }
    if raw is not None:
        handle = raw.select_graph(graph)
        ways["raw_query"] = lambda q, p: handle.query(q, dict(p))
        ways["raw_ro"] = lambda q, p: handle.ro_query(q, dict(p))
    task = bar.add_task("1/2/3-hop queries", total=len(HOP_QUERIES) * len(anchors) * len(ways))
    names = list(ways)
    for hops, query in HOP_QUERIES.items():
        for anchor in anchors[:10]:  # warm-up: connections, the plan cache
            for run in ways.values():
                run(query, {"id": anchor})
        samples: dict[str, list[float]] = {name: [] for name in names}
        for n, anchor in enumerate(anchors):  # each anchor on every way, in rotating order
            for way in names[n % len(names) :] + names[: n % len(names)]:
                t0 = time.perf_counter()
                ways[way](query, {"id": anchor})
                samples[way].append((time.perf_counter() - t0) * 1000)
                bar.advance(task)
        for way, measured in samples.items():
            side = report.metrics if way == "graph" else report.baseline
            for pct in (50, 95):
                side[f"{way}_{hops}_p{pct}_ms"] = percentile(measured, pct)
    bar.remove_task(task)
    metrics, baseline = report.metrics, report.baseline
    if "raw_query_1hop_p50_ms" in baseline:
        for hops in HOP_QUERIES:
            metrics[f"graph_vs_raw_query_{hops}_p50_ratio"] = metrics[f"graph_{hops}_p50_ms"] / max(
                baseline[f"raw_query_{hops}_p50_ms"], 1e-6
            )
            metrics[f"raw_ro_vs_raw_query_{hops}_p50_ratio"] = baseline[f"raw_ro_{hops}_p50_ms"] / max(
                baseline[f"raw_query_{hops}_p50_ms"], 1e-6
            )
    report.target("graph_1hop_p95_ms", metrics["graph_1hop_p95_ms"], at_most=30.0)
    report.target("graph_2hop_p95_ms", metrics["graph_2hop_p95_ms"], at_most=120.0)
    report.target("graph_3hop_p95_ms", metrics["graph_3hop_p95_ms"], at_most=120.0)


# -- the runtime ------------------------------------------------------------------------------------------


class _BenchState(TypedDict, total=False):
    question: str
    prompt: list[dict[str, Any]]
    reply: str
    answer: str


def _plan_node(state: _BenchState) -> dict[str, Any]:
    question = state["question"]
    return {
        "prompt": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}]
    }


def _answer_node(state: _BenchState) -> dict[str, Any]:
    return {"answer": state["reply"].strip()}


async def _routed_model_node(state: _BenchState, runtime: Any) -> dict[str, Any]:
    result = await runtime.context.complete(task="chat", messages=state["prompt"], stream=False)
    return {"reply": result.text}


def _three_nodes(state_type: Any, model_node: Any, **kwargs: Any) -> Any:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(state_type, **kwargs)
    graph.add_node("plan", _plan_node)
    graph.add_node("model", model_node)
    graph.add_node("answer", _answer_node)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "model")
    graph.add_edge("model", "answer")
    graph.add_edge("answer", END)
    return graph


def _reply(messages: list[Any], call: Any) -> str:
    del call
    return f"ledger-service depends on fx-rates ({len(messages)} messages)"


async def _runtime_runs(
    settings: Settings, runs: int, tick: Callable[[], None]
) -> tuple[list[float], list[float]]:
    """Alternate runner runs and bare-LangGraph runs (same router, same scripted client); their times."""
    from maestro.agents.runtime.context import RunContext
    from maestro.agents.runtime.registry import Workcell, register, unregister
    from maestro.agents.runtime.state import BaseState
    from maestro.core.authority import Authority, Principal
    from maestro.core.roles import scopes_for
    from maestro.router.testing import FunctionLLM

    class RunnerState(BaseState, _BenchState, total=False):
        pass

    workcell = Workcell(
        name=RUNTIME_WORKCELL,
        description="benchmark: plan -> model -> answer",
        action="chat",
        build=lambda: _three_nodes(RunnerState, _routed_model_node, context_schema=RunContext),
        initial_state=lambda payload: {"question": str(payload["question"])},
        output=lambda state: {"answer": state.get("answer")},
    )
    roles = ("engineer",)
    principal = Principal(
        id="prn-bench", tenant="bench", name="bench", kind="user", roles=roles, scopes=scopes_for(list(roles))
    )
    authority = Authority(principal=principal, scopes=principal.scopes)
    client = FunctionLLM(_reply)
    previous = register(workcell)
    runner, close = _build_runner(settings, client)
    runner_ms: list[float] = []
    bare_ms: list[float] = []
    try:
        async with _bare_graph(settings.data_dir / "bare.sqlite", runner.router, authority) as bare:
            for n in range(runs + 3):  # three warm-up runs of each
                t0 = time.perf_counter()
                run = await runner.start(RUNTIME_WORKCELL, {"question": f"q{n}"}, authority)
                spent = (time.perf_counter() - t0) * 1000
                if run.status != "succeeded":
                    raise RuntimeError(f"the benchmark workcell ended {run.status}: {run.error}")
                t0 = time.perf_counter()
                state = await bare.ainvoke({"question": f"q{n}"}, {"configurable": {"thread_id": f"t{n}"}})
                bare_spent = (time.perf_counter() - t0) * 1000
                if not state.get("answer"):
                    raise RuntimeError("the bare LangGraph baseline produced no answer")
                if n >= 3:
                    runner_ms.append(spent)
                    bare_ms.append(bare_spent)
                    tick()
                    tick()
        await runner.aclose()
    finally:
        close()
        unregister(RUNTIME_WORKCELL, restore=previous)
    return runner_ms, bare_ms


def _build_runner(settings: Settings, client: Any) -> tuple[Any, Callable[[], None]]:
    """A ``WorkcellRunner`` wired as ``maestro.api.container.build_services`` wires it (state DB, ledger,
    PII prompt filter, router, policy, approvals); rebuilt here because ``bench`` may not import ``api``."""
    import secrets

    from sqlalchemy.engine import Connection

    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.agents.runtime.store import RunStore
    from maestro.bench.router import configured_prompt_embedder
    from maestro.core.approvals import ApprovalStore
    from maestro.core.authorize import Authorizer
    from maestro.core.ledger import Ledger, load_signing_key
    from maestro.core.policy import build_policy_engine
    from maestro.router.factory import build_router, open_state_db
    from maestro.router.privacy import PrivacyFilter
    from maestro.tools.pii import PIIGuard, PIIPromptGuard
    from maestro.tools.pii.quick import QuickRedactor

    engine = open_state_db(settings)
    hash_key = secrets.token_bytes(32)
    ledger = Ledger(engine, load_signing_key(settings), redact=QuickRedactor(hash_key=hash_key).redact)
    privacy = PrivacyFilter(PIIPromptGuard(PIIGuard(hash_key=hash_key)), mode=settings.pii_mode)
    router = build_router(
        settings,
        engine=engine,
        client=client,
        ledger=ledger,
        privacy=privacy,
        prompt_embedder=configured_prompt_embedder(settings),  # as build_services passes it
    )

    def record(kind: str, payload: dict[str, Any], /, *, conn: Connection | None = None) -> None:
        actor = payload.get("principal_id") or payload.get("decided_by") or payload.get("requested_by")
        ledger.append(kind, payload, tenant=payload.get("tenant"), actor=actor, conn=conn)

    authorizer = Authorizer(build_policy_engine(settings), record=record)
    runner = WorkcellRunner(
        settings,
        router=router,
        runs=RunStore(engine),
        approvals=ApprovalStore(engine, authorizer=authorizer, record=record),
        authorizer=authorizer,
        record=record,
    )

    def close() -> None:
        router.close()
        engine.dispose()

    return runner, close


@asynccontextmanager
async def _bare_graph(path: Path, router: Any, authority: Any) -> AsyncIterator[Any]:
    """The baseline: the three nodes on a bare LangGraph graph with an ``AsyncSqliteSaver`` (the pragmas
    the runtime's checkpointer uses), compiled once; its model node makes the runner context's routed
    call (``router.complete(RouteRequest.for_authority(...))``) and nothing else."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from maestro.router.policy import RouteRequest

    async def model_node(state: _BenchState) -> dict[str, Any]:
        request = RouteRequest.for_authority(authority, task="chat", messages=state["prompt"])
        return {"reply": (await router.complete(request)).text}

    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=30.0) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield _three_nodes(_BenchState, model_node).compile(checkpointer=saver)


def _bench_runtime(report: BenchReport, bar: Progress, settings: Settings, *, runs: int) -> None:
    task = bar.add_task("workcell runner vs bare LangGraph", total=2 * runs)
    with tempfile.TemporaryDirectory(prefix="maestro-bench-cypher-") as tmp:
        scratch = settings.model_copy(update={"data_dir": Path(tmp) / "var", "database_url": None})
        runner, bare = asyncio.run(_runtime_runs(scratch, runs, lambda: bar.advance(task)))
    bar.remove_task(task)
    metrics, baseline = report.metrics, report.baseline
    metrics["runtime_runner_p50_ms"] = percentile(runner, 50)
    metrics["runtime_runner_p95_ms"] = percentile(runner, 95)
    baseline["runtime_bare_langgraph_p50_ms"] = percentile(bare, 50)
    baseline["runtime_bare_langgraph_p95_ms"] = percentile(bare, 95)
    ratio = metrics["runtime_runner_p50_ms"] / max(baseline["runtime_bare_langgraph_p50_ms"], 1e-6)
    metrics["runtime_vs_bare_p50_ratio"] = ratio
    metrics["runtime_overhead_p50_ms"] = (
        metrics["runtime_runner_p50_ms"] - baseline["runtime_bare_langgraph_p50_ms"]
    )
    report.target("runtime_vs_bare_p50_ratio", ratio, at_most=1.5)


# -- helpers ----------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
