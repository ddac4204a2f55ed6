"""The policy engine: Rego policies (``core/policies``) evaluated in-process or by an OPA server.

Every authorization check asks one question, ``data.authz.decision``, of a ``PolicyEngine`` and gets a
``PolicyDecision`` back. Two engines answer it from the same bundle (DESIGN.md, "policy"):

- ``RegoEngine`` (embedded default) runs the policy in-process with regopy (rego-cpp) from a bundle
  compiled ahead of time, so a decision costs a few hundred microseconds and no I/O.
- ``OPAEngine`` (production, ``MAESTRO_OPA_URL``) POSTs the input to an OPA server loaded with the same
  policy directory.

Both **fail closed**: an engine error, a timeout, an undefined or malformed result is a *deny* whose only
reason starts with ``"policy engine error: "``, logged at ERROR. Nothing is allowed by accident.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from maestro.core.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

    from maestro.core.settings import Settings

logger = logging.getLogger(__name__)

ENGINE_ERROR = "policy engine error"
"""Prefix of the one reason a fail-closed decision carries."""

DECISION_PATH = "authz/decision"
"""The document every engine evaluates: ``data.authz.decision`` = ``{"allow": bool, "reasons": [str]}``."""

_PACKAGE_AUTHZ = re.compile(r"^package authz\s*$", re.MULTILINE)
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The answer to one authorization question.

    ``reasons`` explain a denial (empty when allowed); ``engine`` is ``"rego"`` or ``"opa"``;
    ``bundle_version`` is the SHA-256 of the policy files that decided (see ``bundle_version``).
    """

    allow: bool
    reasons: tuple[str, ...]
    engine: str
    bundle_version: str

    @property
    def engine_error(self) -> bool:
        """True when the engine failed and the deny came from failing closed, not from the policy."""
        return not self.allow and any(reason.startswith(ENGINE_ERROR) for reason in self.reasons)


@runtime_checkable
class PolicyEngine(Protocol):
    """Evaluates ``data.authz.decision`` for one input; never raises, denies on any failure."""

    @property
    def name(self) -> str: ...

    @property
    def bundle_version(self) -> str: ...

    def decide(self, input: Mapping[str, Any]) -> PolicyDecision: ...


class PolicyEngineError(Exception):
    """Internal: the engine could not produce a well-formed decision (turned into a deny)."""


# -- the bundle on disk --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """The policy files of one directory: Rego modules (``*_test.rego`` excluded) and ``data.json``."""

    modules: tuple[tuple[str, str], ...]
    data_json: str | None
    version: str


def load_bundle(policy_dir: Path) -> PolicyBundle:
    """Read ``policy_dir``; raise ``ConfigurationError`` when it has no policy or unreadable data."""
    directory = Path(policy_dir)
    if not directory.is_dir():
        raise ConfigurationError(
            f"policy directory {str(directory)!r} does not exist: set MAESTRO_POLICY_DIR to the folder "
            "holding authz.rego (default: maestro/core/policies)"
        )
    modules = tuple(
        (path.name, path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.rego"))
        if not path.name.endswith("_test.rego")
    )
    if not any(_PACKAGE_AUTHZ.search(source) for _, source in modules):
        raise ConfigurationError(
            f"no Rego module with 'package authz' in {str(directory)!r}: the policy engine needs "
            "data.authz.decision (see maestro/core/policies/authz.rego)"
        )
    data_path = directory / "data.json"
    data_json: str | None = None
    if data_path.is_file():
        data_json = data_path.read_text(encoding="utf-8")
        try:
            parsed = json.loads(data_json)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{data_path} is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"{data_path} must hold one JSON object (its keys become data.*)")
    return PolicyBundle(modules=modules, data_json=data_json, version=_version(modules, data_json))


def bundle_version(policy_dir: Path) -> str:
    """SHA-256 (hex) over the policy files' names and contents: changes whenever a decision could."""
    return load_bundle(policy_dir).version


def _version(modules: tuple[tuple[str, str], ...], data_json: str | None) -> str:
    digest = hashlib.sha256()
    for name, source in (*modules, ("data.json", data_json or "")):
        for part in (name, source):
            encoded = part.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
    return digest.hexdigest()


# -- decisions -----------------------------------------------------------------------------------------


def parse_decision(value: object, *, engine: str, bundle_version: str) -> PolicyDecision:
    """A ``PolicyDecision`` from the policy's raw result; ``PolicyEngineError`` unless well formed.

    The result must be ``{"allow": bool, "reasons": [str, ...]}``; an allow that also gives reasons is
    contradictory and refused. A deny without reasons gets a generic one.
    """
    if not isinstance(value, Mapping):
        raise PolicyEngineError(f"data.authz.decision is {type(value).__name__}, not an object")
    allow, reasons = value.get("allow"), value.get("reasons")
    if not isinstance(allow, bool):
        raise PolicyEngineError("data.authz.decision.allow is not a boolean")
    if not isinstance(reasons, list) or not all(isinstance(reason, str) for reason in reasons):
        raise PolicyEngineError("data.authz.decision.reasons is not a list of strings")
    if allow and reasons:
        raise PolicyEngineError("data.authz.decision allows and gives reasons to deny")
    if not allow and not reasons:
        reasons = ["denied by policy (no reason given)"]
    return PolicyDecision(allow=allow, reasons=tuple(reasons), engine=engine, bundle_version=bundle_version)


def fail_closed(error: str, *, engine: str, bundle_version: str, action: object = None) -> PolicyDecision:
    """The deny returned when an engine fails; logged at ERROR (the action only, never the input)."""
    message = f"{ENGINE_ERROR}: {error}"
    logger.error("%s engine failed closed for action %r: %s", engine, action, message)
    return PolicyDecision(allow=False, reasons=(message,), engine=engine, bundle_version=bundle_version)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


# -- embedded: regopy ----------------------------------------------------------------------------------


def load_regopy() -> ModuleType:
    """Import regopy, after torch when torch is installed; the one way Maestro (and its tests) load it.

    rego-cpp's shared library exports its own C++ ``operator new``/``delete``; a process that loads
    torch *after* it corrupts its heap ("double free or corruption", an abort). Loading torch first is
    safe, and spaCy (the PII guard) and sentence-transformers (retrieval) load torch anyway, so the
    process that needs both pays torch's import here instead of crashing later.
    """
    if "regopy" not in sys.modules and importlib.util.find_spec("torch") is not None:
        importlib.import_module("torch")
    return importlib.import_module("regopy")


class RegoEngine:
    """Evaluates the policy in-process with regopy, from a bundle compiled once per interpreter.

    A regopy ``Interpreter`` holds the input between ``set_input`` and the query, so one shared between
    threads answers with other requests' decisions. The engine therefore keeps a small pool: at most
    ``max_interpreters`` (default: the CPU count, at most 8) interpreters, each with its own compiled
    bundle (~15 ms and ~4 MB each, built on first need from the sources read at construction), each
    used by one thread at a time. An interpreter that failed is dropped, never reused. A caller that
    waits more than ``acquire_timeout_s`` for a free interpreter is denied (fail closed).
    """

    name = "rego"

    def __init__(
        self, policy_dir: Path, *, max_interpreters: int | None = None, acquire_timeout_s: float = 5.0
    ) -> None:
        self._bundle = load_bundle(policy_dir)
        size = max_interpreters if max_interpreters is not None else min(8, os.cpu_count() or 1)
        if size < 1:
            raise ConfigurationError(f"max_interpreters must be at least 1, got {size}")
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[_Compiled] = queue.LifoQueue()
        self._acquire_timeout_s = acquire_timeout_s
        try:
            self._idle.put(self._compile())  # compile now: a policy that does not build is a start-up error
        except Exception as exc:  # regopy raises RegoError and, on some paths, other exceptions
            raise ConfigurationError(
                f"the Rego policy in {str(policy_dir)!r} does not compile: {_short(str(exc))}"
            ) from exc

    @property
    def bundle_version(self) -> str:
        return self._bundle.version

    def decide(self, input: Mapping[str, Any]) -> PolicyDecision:
        """Evaluate ``data.authz.decision`` for ``input``; deny (fail closed) on any engine failure."""
        try:
            value = self._evaluate(input)
            return parse_decision(value, engine=self.name, bundle_version=self.bundle_version)
        except Exception as exc:  # fail closed: whatever went wrong, the answer is deny
            return fail_closed(
                _short(f"{type(exc).__name__}: {exc}"),
                engine=self.name,
                bundle_version=self.bundle_version,
                action=input.get("action") if isinstance(input, Mapping) else None,
            )

    def _compile(self) -> _Compiled:
        load_regopy()
        from regopy import Interpreter, LogLevel

        interpreter = Interpreter()
        interpreter.log_level = LogLevel.NONE  # rego-cpp prints compile errors to stdout otherwise
        for module_name, source in self._bundle.modules:
            interpreter.add_module(module_name, source)
        if self._bundle.data_json is not None:
            interpreter.add_data_json(self._bundle.data_json)
        bundle = interpreter.build(None, [DECISION_PATH])
        if not bundle.ok():
            raise PolicyEngineError(f"rego build failed: {_rego_error(interpreter)}")
        return _Compiled(interpreter, bundle)

    def _evaluate(self, input: Mapping[str, Any]) -> object:
        if not self._slots.acquire(timeout=self._acquire_timeout_s):
            raise PolicyEngineError(f"no Rego interpreter free within {self._acquire_timeout_s} s")
        try:
            try:
                compiled = self._idle.get_nowait()
            except queue.Empty:
                compiled = self._compile()
            value = _query(compiled, input)
            self._idle.put(compiled)  # only reached when the interpreter worked
            return value
        finally:
            self._slots.release()


@dataclass(frozen=True, slots=True)
class _Compiled:
    interpreter: Any
    bundle: Any


def _query(compiled: _Compiled, input: Mapping[str, Any]) -> object:
    from regopy import Input

    interpreter = compiled.interpreter
    interpreter.set_input(Input(input))
    # Querying the entrypoint is ~15% faster than a bound query (``x := data.authz.decision``).
    # Output() parses the result JSON in Python; never call str(), .node() or .expressions() on a
    # failed or undefined output: regopy aborts the process.
    output = interpreter.query_bundle_entrypoint(compiled.bundle, DECISION_PATH)
    if not output.ok():
        raise PolicyEngineError(f"rego evaluation failed: {_rego_error(interpreter)}")
    results = output.results
    if len(results) != 1 or len(results[0].expressions) != 1:
        raise PolicyEngineError("data.authz.decision is undefined")
    return results[0].expressions[0]


def _rego_error(interpreter: Any) -> str:
    """The interpreter's last error message (regopy keeps it on the interpreter, not on the output)."""
    try:
        from regopy.rego_shared import rego_get_error

        return _short(str(rego_get_error(interpreter._impl)))
    except Exception:  # best effort: the caller is already failing closed
        return "no error message available"


# -- production: OPA server ----------------------------------------------------------------------------


class OPAEngine:
    """Asks an OPA server: ``POST {url}/v1/data/authz/decision`` with ``{"input": ...}``.

    The server must run the same policy directory as its bundle (``opa run -s -b maestro/core/policies``).
    Any transport error, timeout, non-2xx status, non-JSON body or missing ``result`` (undefined) is a
    deny. ``bundle_version`` is what Maestro records with decisions: pass the version of the bundle the
    server was given (``build_policy_engine`` hashes ``settings.policy_dir``).
    """

    name = "opa"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 1.0,
        client: httpx.Client | None = None,
        bundle_version: str = "unknown",
    ) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"MAESTRO_OPA_URL must be an http(s) URL, got {url!r}")
        self._endpoint = f"{url.rstrip('/')}/v1/data/{DECISION_PATH}"
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self._timeout)
        self._version = bundle_version

    @property
    def bundle_version(self) -> str:
        return self._version

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def decide(self, input: Mapping[str, Any]) -> PolicyDecision:
        """Ask the server; deny (fail closed) on any failure."""
        import httpx

        action = input.get("action") if isinstance(input, Mapping) else None
        try:
            response = self._client.post(self._endpoint, json={"input": dict(input)}, timeout=self._timeout)
        except httpx.TimeoutException:
            return self._fail(f"OPA at {self._endpoint} timed out", action)
        except Exception as exc:  # fail closed: transport errors, a closed client, unserialisable input
            return self._fail(f"OPA request failed: {type(exc).__name__}: {_short(str(exc))}", action)
        if not response.is_success:
            return self._fail(f"OPA answered HTTP {response.status_code}", action)
        try:
            body = response.json()
        except ValueError:
            return self._fail("OPA answered with a body that is not JSON", action)
        if not isinstance(body, dict) or "result" not in body:
            return self._fail("data.authz.decision is undefined on the OPA server", action)
        try:
            return parse_decision(body["result"], engine=self.name, bundle_version=self._version)
        except PolicyEngineError as exc:
            return self._fail(str(exc), action)

    def close(self) -> None:
        """Close the HTTP client if this engine created it."""
        if self._owns_client:
            self._client.close()

    def _fail(self, error: str, action: object) -> PolicyDecision:
        return fail_closed(error, engine=self.name, bundle_version=self._version, action=action)


def build_policy_engine(settings: Settings) -> PolicyEngine:
    """``OPAEngine`` when ``settings.opa_url`` is set, else ``RegoEngine`` on ``settings.policy_dir``.

    The OPA timeout is ``settings.opa_timeout_s`` when that setting exists (default 1 s).
    """
    if settings.opa_url:
        timeout_s = float(getattr(settings, "opa_timeout_s", 1.0))
        return OPAEngine(
            settings.opa_url, timeout_s=timeout_s, bundle_version=bundle_version(settings.policy_dir)
        )
    return RegoEngine(settings.policy_dir)


class LazyPolicyEngine:
    """Builds the real engine on the first decision (for the CLI, whose commands rarely need one).

    The API server builds its engine eagerly so a policy that does not compile stops it at start-up.
    """

    def __init__(self, build: Callable[[], PolicyEngine]) -> None:
        self._build = build
        self._engine: PolicyEngine | None = None
        self._lock = threading.Lock()

    def _get(self) -> PolicyEngine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._build()
        return self._engine

    @property
    def name(self) -> str:
        return self._get().name

    @property
    def bundle_version(self) -> str:
        return self._get().bundle_version

    def decide(self, input: Mapping[str, Any]) -> PolicyDecision:
        return self._get().decide(input)
