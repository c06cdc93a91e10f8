"""Tokens: optional expiry, atomic rotation, and no leak through revocation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from arkwright.service.db import TokenRow, utcnow


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_with_a_ttl_stops_working_when_it_expires(service):
    service.user("alice", "research")
    made = service.client.post("/v1/tokens?user=alice&ttl=30d", headers=service.admin)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["expires_at"] is not None
    assert service.client.get("/v1/jobs", headers=bearer(body["token"])).status_code == 200
    # Age the token past its expiry in the database (and drop the server's cached answer).
    with service.control.sessions() as session, session.begin():
        row = session.scalar(select(TokenRow).where(TokenRow.prefix == body["prefix"]))
        row.expires_at = utcnow() - timedelta(seconds=1)
    service.client.app.state.tokens.forget(row.token_hash)
    answer = service.client.get("/v1/jobs", headers=bearer(body["token"]))
    assert answer.status_code == 401 and "expired" in answer.text
    # An expired token can be neither rotated nor revoked: it is not live.
    assert (
        service.client.delete(f"/v1/tokens/{body['prefix']}", headers=service.admin).status_code
        == 404
    )


def test_ttl_is_validated(service):
    for ttl, status in (("soon", 422), ("1e308", 422), ("99999d", 422), ("9" * 40, 422)):
        response = service.client.post(f"/v1/tokens?ttl={ttl}", headers=service.admin)
        assert response.status_code == status, (ttl, response.text)


def test_rotation_replaces_the_old_token_at_once(service):
    alice = service.user("alice", "research")
    own = service.client.post("/v1/tokens", headers=alice).json()
    rotated = service.client.post(f"/v1/tokens/{own['prefix']}/rotate?ttl=1h", headers=alice)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["user"] == "alice" and new["prefix"] != own["prefix"]
    assert service.client.get("/v1/jobs", headers=bearer(own["token"])).status_code == 401
    assert service.client.get("/v1/jobs", headers=bearer(new["token"])).status_code == 200
    again = service.client.post(f"/v1/tokens/{own['prefix']}/rotate", headers=alice)
    assert again.status_code == 404
    audit = service.client.get("/v1/audit", headers=service.admin).json()
    assert "rotate-token" in {a["action"] for a in audit}


def test_revoking_someone_elses_token_reads_as_unknown(service):
    alice = service.user("alice", "research")
    bob_made = service.client.post(
        "/v1/users", headers=service.admin, json={"name": "bob", "tenant": "nhs"}
    ).json()
    foreign = service.client.delete(f"/v1/tokens/{bob_made['prefix']}", headers=alice)
    unknown = service.client.delete("/v1/tokens/ark_zzzzzzzz", headers=alice)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"].replace(bob_made["prefix"], "P") == unknown.json()[
        "detail"
    ].replace("ark_zzzzzzzz", "P")
    foreign_rotate = service.client.post(f"/v1/tokens/{bob_made['prefix']}/rotate", headers=alice)
    assert foreign_rotate.status_code == 404
    # Bob's token still works: the refusal changed nothing.
    assert service.client.get("/v1/jobs", headers=bearer(bob_made["token"])).status_code == 200
