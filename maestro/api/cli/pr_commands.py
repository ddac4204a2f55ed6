"""``maestro prs list|show|review|merge|close``: the pull requests Maestro opened, for the humans.

Bots (workcells, the eval harness) open and update pull requests through the PR port; these commands
are the human side. They act as the local operator of this machine (``operator_authority``: the admin,
a *user*), so the policy's human-only tools (``pr.review``, ``pr.merge``, ``pr.close``) are open to
them; merging additionally needs ``repo:merge``, which the local operator holds. Each PR is handled by
the backend that opened it (``git`` or ``github``, recorded on the PR), configured by ``PRConfig``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    app,
    operator_authority,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, reported

if TYPE_CHECKING:
    from maestro.api.container import Services
    from maestro.core.authority import Authority
    from maestro.core.settings import Settings
    from maestro.tools.prs import PRBackend, PullRequest, Verdict

prs_app = typer.Typer(
    help="Pull requests opened by Maestro: list, show, review, merge.", no_args_is_help=True
)
app.add_typer(prs_app, name="prs")

IdArg = Annotated[str, typer.Argument(help="The pull request's id (pr_...).")]
StateOpt = Annotated[str | None, typer.Option("--state", help="open, merged or closed.")]


@prs_app.command("list")
def prs_list(state: StateOpt = None, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's pull requests, newest first."""
    from maestro.core.errors import InvalidRequest
    from maestro.tools.prs import PR_STATES
    from maestro.tools.prs.store import PRStore

    settings = settings_from_env()
    with reported(as_json=as_json):
        if state is not None and state not in PR_STATES:
            raise InvalidRequest(f"unknown state {state!r}: use one of {', '.join(PR_STATES)}")
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            found = PRStore(services.engine).list(authority.tenant, state=state)
        finally:
            services.close()
    if as_json:
        emit_json({"tenant": authority.tenant, "pull_requests": [_summary(pr) for pr in found]})
        return
    if not found:
        err_console.print(f"tenant {authority.tenant!r} has no{' ' + state if state else ''} pull requests")
    for pr in found:
        err_console.print(
            f"[bold]{pr.id}[/]  {pr.state:<6}  {escape(pr.title)}  [dim]{pr.branch} -> {pr.base} on "
            f"{escape(pr.repo)}{'  #' + str(pr.number) if pr.number else ''}  "
            f"{escape(', '.join(pr.labels))}[/]",
            highlight=False,
        )


@prs_app.command("show")
def prs_show(pr_id: IdArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """One pull request with its body and reviews."""
    from maestro.tools.prs.store import PRStore

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            pr = PRStore(services.engine).get(authority.tenant, pr_id)
        finally:
            services.close()
    _print(pr, as_json)


@prs_app.command("review")
def prs_review(
    pr_id: IdArg,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the pull request.")] = False,
    request_changes: Annotated[
        bool, typer.Option("--request-changes", help="Ask for changes (needs --note).")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="What you think, or what to change.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Review a pull request as the local operator (a human): approve or request changes."""
    if approve == request_changes:
        raise typer.BadParameter("pass exactly one of --approve or --request-changes")
    verdict: Verdict = "approve" if approve else "request_changes"
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            backend = _backend_for(services, settings, authority, pr_id)
            pr = backend.review(authority, pr_id, verdict=verdict, note=note)
        finally:
            services.close()
    _print(pr, as_json)


@prs_app.command("merge")
def prs_merge(pr_id: IdArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Merge an approved pull request into its base branch (a real merge commit; humans only)."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)  # the admin role holds repo:merge
            backend = _backend_for(services, settings, authority, pr_id)
            pr = backend.merge(authority, pr_id)
        finally:
            services.close()
    _print(pr, as_json)


@prs_app.command("close")
def prs_close(pr_id: IdArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Close a pull request without merging it."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = operator_authority(settings, tenant)
            pr = _backend_for(services, settings, authority, pr_id).close(authority, pr_id)
        finally:
            services.close()
    _print(pr, as_json)


def _backend_for(services: Services, settings: Settings, authority: Authority, pr_id: str) -> PRBackend:
    """The backend that opened ``pr_id`` (``NotFound`` for another tenant's or an unknown id)."""
    from maestro.tools.prs.config import PRConfig
    from maestro.tools.prs.factory import build_pr_backend
    from maestro.tools.prs.store import PRStore

    pr = PRStore(services.engine).get(authority.tenant, pr_id)
    return build_pr_backend(
        PRConfig.from_settings(settings),
        engine=services.engine,
        authorizer=services.authorizer,
        record=services.record,
        backend=pr.backend,
    )


def _summary(pr: PullRequest) -> dict[str, Any]:
    doc = pr.to_dict()
    doc.pop("body")
    return doc


def _print(pr: PullRequest, as_json: bool) -> None:
    if as_json:
        emit_json(pr.to_dict())
        return
    err_console.print(f"[bold]{escape(pr.title)}[/]  ({pr.id}, {pr.state})", highlight=False)
    err_console.print(
        f"{pr.branch} -> {pr.base} on {pr.repo}  head {pr.head_sha or '-'}  opened by {pr.opened_by}"
        f"{'  ' + pr.url if pr.url else ''}",
        highlight=False,
        markup=False,
    )
    if pr.labels:
        err_console.print("labels: " + ", ".join(pr.labels), highlight=False, markup=False)
    for review in pr.reviews:
        err_console.print(
            f"review: {review.by} {review.verdict} {review.at}{': ' + review.note if review.note else ''}",
            highlight=False,
            markup=False,
        )
    if pr.state == "merged":
        err_console.print(f"merged by {pr.merged_by} as {pr.merge_sha}", highlight=False, markup=False)
    err_console.print("")
    err_console.print(pr.body, highlight=False, markup=False)
