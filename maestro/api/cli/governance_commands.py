"""Governance commands: API keys, the ledger, PII scans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    keys_app,
    ledger_app,
    pii_app,
    read_stdin,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, reported, write_text


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Option(help="Principal name; created with --role if it does not exist.")],
    tenant: TenantOpt = None,
    role: Annotated[
        list[str] | None, typer.Option(help="Role(s) for a new principal (admin, engineer, ...).")
    ] = None,
    kind: Annotated[str, typer.Option(help="user or bot (for a new principal).")] = "user",
    scope: Annotated[list[str] | None, typer.Option(help="Narrow the key to these scopes.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 with a time zone.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for a principal (and the principal, if new)."""
    from datetime import datetime

    from maestro.core.errors import InvalidRequest, NotFound
    from maestro.core.principals import check_kind

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        tenant_id = tenant or settings.default_tenant
        try:
            who = services.principals.get_by_name(tenant_id, principal)
        except NotFound:
            if not role:
                raise InvalidRequest(
                    f"principal '{principal}' does not exist in tenant '{tenant_id}': "
                    "pass --role to create it"
                ) from None
            who = services.principals.create(tenant_id, principal, roles=role, kind=check_kind(kind))
        try:
            expires_at = datetime.fromisoformat(expires) if expires else None
        except ValueError:
            raise InvalidRequest(f"--expires {expires!r} is not an ISO 8601 date-time") from None
        plaintext, info = services.api_keys.create(
            who.id, name, scopes=scope, expires_at=expires_at, tenant=tenant_id
        )
    if as_json:
        emit_json({"key": plaintext, **info.to_dict()})
        return
    write_text(plaintext + "\n")
    err_console.print(f"key {info.display} for {tenant_id}/{principal}: store it now, it is not shown again")


@keys_app.command("list")
def keys_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's keys (prefixes only)."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        keys = services_for(settings).api_keys.list(tenant or settings.default_tenant)
    rows = [k.to_dict() for k in keys]
    if as_json:
        emit_json({"keys": rows})
        return
    for r in rows:
        state = "revoked" if r.get("revoked_at") else "active"
        err_console.print(f"{r['id']}  {r['prefix']}  {r['name']}  principal={r['principal_id']}  {state}")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id, prefix, or mk_<prefix>.")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key (idempotent)."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        info = services_for(settings).api_keys.revoke(key, tenant=tenant or settings.default_tenant)
    if as_json:
        emit_json(info.to_dict())
    else:
        err_console.print(f"revoked {info.display}")


@pii_app.command("scan")
def pii_scan(
    redact: Annotated[bool, typer.Option("--redact", help="Print the redacted text (human output).")] = False,
    mode: Annotated[str, typer.Option(help="redact, mask, hash or pseudonymize.")] = "redact",
    fast: Annotated[bool, typer.Option(help="Patterns only, no NER model (faster, fewer names).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scan stdin for PII and secrets: {"entities": [{type, start, end, score}], "redacted": str}."""
    from maestro.tools.pii import PIIGuard

    text = read_stdin()
    with reported(as_json=as_json):
        result = PIIGuard(ner=not fast).redact(text, mode)  # type: ignore[arg-type]
    document = {"entities": [f.to_dict() for f in result.findings], "redacted": result.text}
    if as_json:
        emit_json(document)
        return
    if redact:
        write_text(result.text)
    for f in result.findings:
        err_console.print(f"{f.type:<24} {f.start:>6}-{f.end:<6} score {f.score:.2f}", highlight=False)
    if not result.findings:
        err_console.print("no PII found")


@ledger_app.command("verify")
def ledger_verify(
    bundle: Annotated[
        str | None, typer.Option(help="Verify an exported bundle file instead of the DB.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every entry and signed head; name the first bad index (exit 1 when not ok)."""
    import json

    from maestro.core.errors import InvalidRequest
    from maestro.core.ledger import verify_bundle

    settings = settings_from_env()
    with reported(as_json=as_json):
        if bundle:
            try:
                document = json.loads(Path(bundle).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidRequest(f"cannot read the bundle {bundle}: {exc}") from None
            report = verify_bundle(document)
        else:
            report = services_for(settings).ledger.verify()
    if as_json:
        emit_json(report.to_dict())
    else:
        state = "[green]ok[/]" if report.ok else f"[red]BAD at index {report.first_bad_index}[/]"
        err_console.print(f"ledger {state}: {report.entries} entries, head {report.head or '-'}")
        if not report.ok:
            err_console.print(report.reason, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("head")
def ledger_head(as_json: JsonOpt = False) -> None:
    """The newest signed tree head."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        head = services_for(settings).ledger.head()
    document = head.to_dict() if head is not None else None
    if as_json:
        emit_json(document)
    elif head is None:
        err_console.print("the ledger is empty")
    else:
        err_console.print(
            f"size {head.tree_size} root {head.root_hash} signed {head.signed_at} by {head.key_id}"
        )


@ledger_app.command("export")
def ledger_export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed evidence bundle.")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries (with proofs).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a signed evidence bundle (entries, proofs, heads, public key) that verifies on its own."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        bundle = services_for(settings).ledger.export(out, tenant=tenant)
    summary = {"out": str(out), "entries": len(bundle["entries"]), "head": bundle["head"]}
    if as_json:
        emit_json(summary)
    else:
        err_console.print(f"wrote {summary['entries']} entries to {out}")
