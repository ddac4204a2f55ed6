"""The authenticated API: keys, chat completions, decisions — tenancy and refusals (real SQLite state DB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from maestro.api.main import create_app
from maestro.core.settings import Settings
from maestro.router.testing import ScriptedLLM


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM([f"answer {i}" for i in range(20)])


@pytest.fixture
def client(settings: Settings, llm: ScriptedLLM) -> Iterator[TestClient]:
    with TestClient(create_app(settings, client=llm)) as test_client:
        yield test_client


def key_for(client: TestClient, tenant: str, name: str, roles: list[str], kind: str = "user") -> str:
    services = client.app.state.services  # type: ignore[attr-defined]
    principal = services.principals.create(tenant, name, roles=roles, kind=kind)
    plaintext, _ = services.api_keys.create(principal.id, "test", tenant=tenant)
    return str(plaintext)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(prompt: str = "Say hello", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": prompt}], **extra}


def test_missing_and_bad_credentials_are_401_without_details(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer mk_nope_nope"}, {"Authorization": "Basic abc"}):
        response = client.post("/v1/chat/completions", json=chat(), headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()["error"]) == {"code", "message"}
        assert "tenant" not in response.text


def test_chat_completion_is_routed_and_recorded(client: TestClient, llm: ScriptedLLM) -> None:
    key = key_for(client, "acme", "alice", ["engineer"])
    response = client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "local/smollm2-135m"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "answer 0"}
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    decision_id = body["maestro"]["decision_id"]
    assert llm.models_called == ["local/smollm2-135m"]
    decision = client.get(f"/v1/router/decisions/{decision_id}", headers=auth(key)).json()
    assert (
        decision["tenant"] == "acme"
        and decision["principal"] == "alice"
        and decision["status"] == "succeeded"
    )


def test_another_tenants_decision_is_not_found(client: TestClient) -> None:
    alice = key_for(client, "acme", "alice", ["engineer"])
    mallory = key_for(client, "globex", "mallory", ["engineer"])
    decision_id = client.post("/v1/chat/completions", json=chat(), headers=auth(alice)).json()["maestro"][
        "decision_id"
    ]
    stolen = client.get(f"/v1/router/decisions/{decision_id}", headers=auth(mallory))
    missing = client.get("/v1/router/decisions/dec_doesnotexist", headers=auth(mallory))
    assert stolen.status_code == missing.status_code == 404
    assert stolen.json() == {"error": {"code": "not_found", "message": f"decision '{decision_id}' not found"}}
    assert client.get("/v1/router/decisions", headers=auth(mallory)).json() == {"decisions": []}


def test_scopes_are_enforced(client: TestClient) -> None:
    viewer = key_for(client, "acme", "vic", ["viewer"])
    assert client.post("/v1/chat/completions", json=chat(), headers=auth(viewer)).status_code == 403
    engineer = key_for(client, "acme", "eve", ["engineer"])
    assert client.get("/v1/keys", headers=auth(engineer)).status_code == 403
    override = chat(model="local/smollm2-135m", override_reason="testing")
    denied = client.post("/v1/chat/completions", json=override, headers=auth(engineer))
    assert denied.status_code == 403 and "router:override" in denied.json()["error"]["message"]


def test_bot_with_admin_role_cannot_do_human_only_actions(client: TestClient) -> None:
    bot = key_for(client, "acme", "remediator", ["admin"], kind="bot")
    assert client.get("/v1/keys", headers=auth(bot)).status_code == 403
    override = chat(model="local/smollm2-135m", override_reason="bot wants it")
    assert client.post("/v1/chat/completions", json=override, headers=auth(bot)).status_code == 403


def test_oversized_and_absurd_requests_are_refused_before_any_call(
    client: TestClient, llm: ScriptedLLM
) -> None:
    key = key_for(client, "acme", "alice", ["engineer"])
    too_big = client.post("/v1/chat/completions", json=chat("x" * 10_000_000), headers=auth(key))
    assert too_big.status_code == 413
    absurd = client.post("/v1/chat/completions", json=chat(max_tokens=1_000_000_000), headers=auth(key))
    assert absurd.status_code == 422
    empty = client.post("/v1/chat/completions", json={"messages": []}, headers=auth(key))
    assert empty.status_code == 422
    assert llm.history == []


def test_streaming_chat_is_server_sent_events(client: TestClient) -> None:
    key = key_for(client, "acme", "alice", ["engineer"])
    with client.stream("POST", "/v1/chat/completions", json=chat(stream=True), headers=auth(key)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "answer 0"
    assert chunks[-1]["maestro"]["decision_id"].startswith("dec_")


def test_keys_api_creates_lists_and_revokes_within_the_tenant(client: TestClient) -> None:
    admin = key_for(client, "acme", "root", ["admin"])
    other_admin = key_for(client, "globex", "groot", ["admin"])
    services = client.app.state.services  # type: ignore[attr-defined]
    services.principals.create("acme", "bob", roles=["engineer"])
    created = client.post("/v1/keys", json={"principal": "bob", "name": "ci"}, headers=auth(admin))
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert client.post("/v1/chat/completions", json=chat(), headers=auth(new_key)).status_code == 200
    listed = client.get("/v1/keys", headers=auth(admin)).json()["keys"]
    assert all("hash" not in json.dumps(k) and new_key not in json.dumps(k) for k in listed)
    key_id = created.json()["id"]
    assert client.delete(f"/v1/keys/{key_id}", headers=auth(other_admin)).status_code == 404
    assert client.delete(f"/v1/keys/{key_id}", headers=auth(admin)).status_code == 200
    assert client.post("/v1/chat/completions", json=chat(), headers=auth(new_key)).status_code == 401


def test_decisions_and_auth_failures_land_in_the_ledger(client: TestClient) -> None:
    key = key_for(client, "acme", "alice", ["engineer"])
    decision_id = client.post("/v1/chat/completions", json=chat(), headers=auth(key)).json()["maestro"][
        "decision_id"
    ]
    assert (
        client.post("/v1/chat/completions", json=chat(), headers=auth("mk_aaaaaaaa_forged")).status_code
        == 401
    )
    ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
    entries = {e.kind: e for e in ledger.entries()}
    assert entries["router.decision"].payload["decision_id"] == decision_id
    assert entries["router.decision"].tenant == "acme"
    assert "Say hello" not in json.dumps(entries["router.decision"].payload)
    assert (
        entries["auth.failed"].payload["reason"] == "malformed_key"
        or entries["auth.failed"].payload["reason"]
    )
    assert "forged" not in json.dumps(entries["auth.failed"].payload)
    report = client.get("/v1/ledger/verify", headers=auth(key)).json()
    assert report == {"ok": True, "entries": 2, "first_bad_index": None, "head": report["head"]}
    assert client.get("/v1/ledger/head", headers=auth(key)).json()["tree_size"] == 2


def test_policy_denials_are_recorded_in_the_ledger(client: TestClient) -> None:
    viewer = key_for(client, "acme", "vic", ["viewer"])
    denied = client.post("/v1/chat/completions", json=chat(), headers=auth(viewer))
    assert denied.status_code == 403
    ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
    denial = next(e for e in ledger.entries() if e.kind == "policy.denied")
    assert denial.tenant == "acme" and denial.payload["action"] == "chat"
    assert any("chat" in reason for reason in denial.payload["reasons"])


def test_approvals_are_granted_once_by_an_approver_of_the_same_tenant(client: TestClient) -> None:
    from maestro.core.authority import Authority

    services = client.app.state.services  # type: ignore[attr-defined]
    requester = services.principals.create("acme", "dev", roles=["engineer"])
    approval = services.approvals.request(
        Authority(principal=requester, scopes=requester.scopes, run_id="run_1"),
        workcell="codegen",
        action="pr.open",
        resource={"kind": "repo", "tenant": "acme", "id": "payments"},
        reason="open the fix PR",
    )
    engineer = key_for(client, "acme", "eng2", ["engineer"])
    lead = key_for(client, "acme", "lead", ["admin"])
    outsider = key_for(client, "globex", "boss", ["admin"])
    bot = key_for(client, "acme", "bot", ["admin"], kind="bot")
    url = f"/v1/approvals/{approval.id}"
    assert client.get(url, headers=auth(outsider)).status_code == 404
    assert client.post(f"{url}/grant", json={}, headers=auth(outsider)).status_code == 404
    assert client.post(f"{url}/grant", json={}, headers=auth(engineer)).status_code == 403
    assert client.post(f"{url}/grant", json={}, headers=auth(bot)).status_code == 403
    granted = client.post(f"{url}/grant", json={"note": "ok"}, headers=auth(lead))
    assert granted.status_code == 200 and granted.json()["status"] == "granted"
    again = client.post(f"{url}/refuse", json={}, headers=auth(lead))
    assert again.status_code == 409
    kinds = [e.kind for e in services.ledger.entries()]
    assert "approval.requested" in kinds and "approval.granted" in kinds


def test_pii_in_free_text_never_enters_the_ledger(client: TestClient) -> None:
    admin = key_for(client, "acme", "root", ["admin"])
    reason = "customer bob.jones@example.com asked; token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    body = chat(model="local/smollm2-135m", override_reason=reason)
    assert client.post("/v1/chat/completions", json=body, headers=auth(admin)).status_code == 200
    assert client.get("/v1/ledger/verify", headers=auth(admin)).json()["ok"] is True
    ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
    stored = json.dumps([e.payload for e in ledger.entries()])
    assert "bob.jones@example.com" not in stored and "a1B2c3D4e5F6" not in stored
    assert "<EMAIL_ADDRESS:" in stored
