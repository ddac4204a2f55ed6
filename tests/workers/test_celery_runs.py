"""Runs through Celery: real Redis (a DB number of its own), real ``maestro worker`` processes, SQLite state.

One worker is shared by the module (start-up is the cost); the kill test runs last because it kills it.
The worker imports ``worker_plugin`` (MAESTRO_WORKER_IMPORTS), which registers the test workcells and
gives the worker's router a ``FunctionLLM``. Short limits make redelivery quick: a hard time limit of
4 s under a visibility timeout of 6 s, and at most 1 redelivery.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from maestro.agents.runtime.registry import register, unregister
from maestro.agents.runtime.runner import WorkcellRunner
from maestro.agents.runtime.store import RunRecord
from maestro.api.container import Services, build_services
from maestro.core.authority import Authority, Principal
from maestro.core.errors import ConfigurationError
from maestro.core.roles import scopes_for
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.workers.app import DEAD_LETTER_KEY, BrokerUnavailable, check_broker_config
from maestro.workers.dispatch import CeleryDispatcher

HERE = Path(__file__).parent
MAESTRO = str(Path(sys.executable).with_name("maestro"))
REDIS_DB = 13
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
LIMITS = {
    "MAESTRO_TASK_TIME_LIMIT_S": "10",  # slack for a loaded 2-core CI machine
    "MAESTRO_BROKER_VISIBILITY_TIMEOUT_S": "15",
    "MAESTRO_MAX_REDELIVERIES": "1",
}
sys.path.insert(0, str(HERE))
import worker_plugin  # noqa: E402  (the same workcells in this process: prepare() validates input)


@dataclass
class Cluster:
    data_dir: Path
    env: dict[str, str]
    services: Services
    runner: WorkcellRunner
    dispatcher: CeleryDispatcher
    workers: list[subprocess.Popen[bytes]]

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = self.data_dir / f"{name}.log"
        handle = log.open("wb")
        proc = subprocess.Popen(
            [MAESTRO, "worker", "--concurrency", "1", "--hostname", f"{name}@test", "--loglevel", "INFO"],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches the pool processes
        )
        self.workers.append(proc)
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return proc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MAESTRO, *args], env=self.env, capture_output=True, text=True, timeout=120, cwd=self.data_dir
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _flush() -> None:
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("celery") / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_") and not k.endswith("_API_KEY")}
    env.update(
        MAESTRO_DATA_DIR=str(data_dir),
        MAESTRO_BROKER_URL=BROKER,
        MAESTRO_WORKER_IMPORTS="worker_plugin",
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        **LIMITS,
    )
    _flush()
    settings = Settings(
        data_dir=data_dir,
        broker_url=BROKER,
        task_time_limit_s=4,
        broker_visibility_timeout_s=6,
        max_redeliveries=1,
        _env_file=None,  # type: ignore[call-arg]
    )
    # this process creates the DB and the ledger key before any worker opens them
    services = build_services(settings, client=FunctionLLM(lambda m, c: "unused"))
    runner = services.runner()
    built = Cluster(data_dir, env, services, runner, CeleryDispatcher(settings, runner), [])
    previous = {cell.name: register(cell) for cell in worker_plugin.WORKCELLS}
    try:
        built.start_worker("w1")
        yield built
    finally:
        for proc in built.workers:
            _kill(proc)
        for name, cell in previous.items():
            unregister(name, restore=cell)
        services.close()
        _flush()


def _authority(name: str, roles: list[str], tenant: str = "default") -> Authority:
    principal = Principal(
        id=f"prn-{name}", tenant=tenant, name=name, kind="user", roles=tuple(roles), scopes=scopes_for(roles)
    )
    return Authority(principal=principal, scopes=principal.scopes)


def _wait(
    cluster: Cluster, run_id: str, until: Callable[[RunRecord], bool], timeout: float = 40
) -> RunRecord:
    deadline = time.monotonic() + timeout
    while True:
        run = cluster.runner.runs.get(run_id, tenant="default")
        if until(run):
            return run
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-2000:] for p in cluster.data_dir.glob("*.log"))
            raise AssertionError(f"run {run_id} stuck at {run.status} (attempts {run.attempts}):\n{logs}")
        time.sleep(0.1)


def _submit(cluster: Cluster, workcell: str, payload: dict[str, Any]) -> RunRecord:
    run = cluster.runner.prepare(workcell, payload, _authority("alice", ["engineer"]))
    return asyncio.run(cluster.dispatcher.submit(run))


def test_run_completes_through_the_broker(cluster: Cluster) -> None:
    done = cluster.cli("run", "chat", "--input", '{"message": "hello"}', "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "succeeded" and run["attempts"] == 1
    assert run["output"]["reply"] == worker_plugin.REPLY  # answered by the worker's FunctionLLM
    events = cluster.runner.runs.events(run["id"])
    assert "".join(e["payload"]["text"] for e in events if e["kind"] == "token") == worker_plugin.REPLY
    assert events[-1]["kind"] == "end"


def test_approval_pauses_then_resumes_through_the_broker(cluster: Cluster) -> None:
    out = cluster.data_dir / "remediate.log"
    run = _submit(cluster, "remediate", {"target": "api", "out": str(out)})
    waiting = _wait(cluster, run.id, lambda r: r.status == "waiting")
    assert waiting.approval_id and not out.exists()

    # another process (the CLI, as the local admin) decides; the resume goes through the broker
    approved = cluster.cli("runs", "approve", run.id, "--note", "ship it", "--json")
    assert approved.returncode == 0, approved.stderr
    doc = json.loads(approved.stdout)
    assert doc["status"] == "succeeded" and doc["output"]["done"] == "deployed api"
    assert out.read_text().count(run.id) == 1
    again = cluster.cli("runs", "approve", run.id, "--json")
    assert again.returncode != 0 and json.loads(again.stdout)["error"]["code"] == "approval_conflict"
    kinds = [e["kind"] for e in cluster.runner.runs.events(run.id)]
    assert kinds.count("waiting") == 1 and kinds[-1] == "end"


def test_poison_task_goes_to_the_dead_letter_queue(cluster: Cluster) -> None:
    run = _submit(cluster, "poison", {})
    dead = _wait(cluster, run.id, lambda r: r.status == "failed", timeout=60)
    assert dead.error is not None and dead.error["code"] == "dead_lettered"
    assert "MAESTRO_MAX_REDELIVERIES" in dead.error["message"]
    assert dead.attempts == 1 + 1 + 1  # first delivery, one redelivery, then the dead-letter delivery
    client = redis.Redis.from_url(BROKER)
    letters = [json.loads(raw) for raw in client.lrange(DEAD_LETTER_KEY, 0, -1)]
    client.close()
    assert [(d["run_id"], d["task"], d["args"]) for d in letters] == [
        (run.id, "maestro.run.execute", [run.id, "default"])
    ]


def test_killed_worker_task_is_redelivered_and_its_effect_happens_once(cluster: Cluster) -> None:
    out, gate = cluster.data_dir / "once.log", cluster.data_dir / "gate"
    run = _submit(cluster, "once", {"target": "db", "out": str(out), "gate": str(gate)})
    deadline = time.monotonic() + 30
    # the effect happened *and was recorded* (a kill between the two would redo it: an external effect is
    # at-least-once up to its record); the node now waits at the gate
    while not (
        out.exists() and out.read_text() and cluster.runner.runs.effect(run.id, "act", "deploy:db")[0]
    ):
        assert time.monotonic() < deadline, "the effect never happened"
        time.sleep(0.02)
    for proc in cluster.workers:
        _kill(proc)  # SIGKILL the whole worker (main process and pool) mid-run
    assert cluster.runner.runs.get(run.id, tenant="default").status == "running"
    gate.touch()
    cluster.start_worker("w2")  # a new worker: Redis hands it the unacked task after the visibility timeout
    done = _wait(cluster, run.id, lambda r: r.status != "running", timeout=60)
    assert done.status == "succeeded" and done.attempts == 2, done.error
    assert done.output is not None and done.output["done"] == "deployed db"
    assert len(out.read_text().splitlines()) == 1  # the redelivered node read the effect back


def test_bad_broker_configuration_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    bad = Settings(
        data_dir=tmp_path,
        broker_url=BROKER,
        task_time_limit_s=900,
        broker_visibility_timeout_s=600,
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(
        ConfigurationError, match="MAESTRO_BROKER_VISIBILITY_TIMEOUT_S.*MAESTRO_TASK_TIME_LIMIT_S"
    ):
        check_broker_config(bad)
    with pytest.raises(ConfigurationError, match="MAESTRO_BROKER_VISIBILITY_TIMEOUT_S"):
        CeleryDispatcher(bad, cluster.runner)
    refused = subprocess.run(
        [MAESTRO, "worker"],
        env={**cluster.env, "MAESTRO_TASK_TIME_LIMIT_S": "900", "MAESTRO_BROKER_VISIBILITY_TIMEOUT_S": "600"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "MAESTRO_BROKER_VISIBILITY_TIMEOUT_S (600s)" in refused.stderr

    # a broker that is not there: a clear error naming the variable, and the run does not stay queued
    down = Settings(
        data_dir=cluster.data_dir,
        broker_url="redis://127.0.0.1:1/0",
        task_time_limit_s=4,
        broker_visibility_timeout_s=6,
        _env_file=None,  # type: ignore[call-arg]
    )
    run = cluster.runner.prepare("remediate", {"target": "x", "out": "x"}, _authority("alice", ["engineer"]))
    with pytest.raises(BrokerUnavailable, match="MAESTRO_BROKER_URL"):
        asyncio.run(CeleryDispatcher(down, cluster.runner).submit(run))
    failed = cluster.runner.runs.get(run.id, tenant="default")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["code"] == "broker_unavailable"


def test_chat_over_the_broker_merges_input_and_keeps_one_thread(cluster: Cluster) -> None:
    talk = subprocess.run(
        [MAESTRO, "chat", "chat", "--input", '{"lang": "en", "message": "overridden"}'],
        input="hello\nand again\n\n",
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cluster.data_dir,
    )
    assert talk.returncode == 0, talk.stderr
    assert talk.stdout.count(worker_plugin.REPLY) == 2  # streamed once per turn, not printed twice
    turns = [r for r in cluster.runner.runs.list(tenant="default", workcell="chat") if r.input.get("lang")]
    assert len(turns) == 2 and len({r.thread_id for r in turns}) == 1
    assert sorted(r.input["message"] for r in turns) == ["and again", "hello"]
    assert all(r.input["lang"] == "en" and r.status == "succeeded" for r in turns)
    assert max(r.output["turns"] for r in turns if r.output) == 2
