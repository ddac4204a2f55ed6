"""What every ``maestro`` command shares: the typer apps, option types, settings and the operator.

Commands live in ``router_commands``, ``governance_commands`` and ``app``; heavy imports stay inside
the commands so that ``maestro --help`` answers quickly.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from maestro.api.container import Services
    from maestro.core.authority import Authority
    from maestro.core.settings import Settings
    from maestro.router.policy import RouteRequest

app = typer.Typer(
    name="maestro",
    help="Maestro: a cost-aware router on LiteLLM feeding LangGraph workcells, bound to an authority.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
route_app = typer.Typer(help="Routing decisions.", no_args_is_help=True)
budget_app = typer.Typer(help="Monthly budgets per tenant and principal.", no_args_is_help=True)
db_app = typer.Typer(help="The state database.", no_args_is_help=True)
pii_app = typer.Typer(help="PII and secrets.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")
keys_app = typer.Typer(help="API keys (hashed at rest; the key is shown once).", no_args_is_help=True)
ledger_app = typer.Typer(help="The tamper-evident ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(route_app, name="route")
app.add_typer(budget_app, name="budget")
app.add_typer(db_app, name="db")
rag_app = typer.Typer(help="Retrieval over Qdrant with verified citations.", no_args_is_help=True)
app.add_typer(rag_app, name="rag")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant (default MAESTRO_DEFAULT_TENANT).")]
TaskOpt = Annotated[str, typer.Option("--task", help="Task class: chat, rag.answer, codegen.edit, ...")]

LOCAL_OPERATOR_SCOPES = frozenset({"router:override", "chat", "budget:admin"})
"""Scopes of the person at the terminal: the CLI runs as the local operator of this machine."""


def settings_from_env() -> Settings:
    from maestro.core.settings import Settings

    return Settings()


def operator() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:operator"


def read_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def operator_request(
    settings: Settings,
    prompt: str,
    *,
    task: str,
    tenant: str | None,
    model: str = "auto",
    reason: str | None = None,
    max_tokens: int | None = None,
) -> RouteRequest:
    from maestro.router.policy import RouteRequest

    return RouteRequest(
        task=task,
        messages=[{"role": "user", "content": prompt}],
        tenant=tenant or settings.default_tenant,
        principal=operator(),
        scopes=LOCAL_OPERATOR_SCOPES,
        max_tokens=max_tokens,
        model=model,
        override_reason=reason,
        clearance="pii",  # the operator at this machine may see the values the router pseudonymised
    )


def operator_authority(settings: Settings, tenant: str | None) -> Authority:
    """The authority of the person at this terminal: the local admin, cleared for PII, in ``tenant``."""
    from maestro.core.authority import Authority, Principal
    from maestro.core.roles import scopes_for

    name = operator()
    principal = Principal(
        id=name,
        tenant=tenant or settings.default_tenant,
        name=name,
        kind="user",
        roles=("admin",),
        scopes=scopes_for(["admin"]),
    )
    return Authority(principal=principal, scopes=principal.scopes, clearance="pii")


def services_for(settings: Settings) -> Services:
    from maestro.api.container import build_services

    return build_services(settings, eager_policy=False)
