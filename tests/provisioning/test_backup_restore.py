"""Backup and restore (issue 14, item 9), against the real stack: PostgreSQL, the broker, real
Celery workers, the real oidc-provider and a real HAProxy. A dump made by scripts/backup.sh is
restored by scripts/restore.sh into a new database; the reconciler then brings the
authorization server and the gateway back to exactly the restored state. And the rule by which
the reconciler removes the registrations the database does not know: only the portal's own."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from orders import services
from provisioning.authserver import AuthServerClient, RegistrationGone
from provisioning.models import ClientRegistration
from provisioning.reconcile import reconcile
from tests.components import PROJECT_DIR, stop
from tests.factories import ClientFactory
from tests.keys import jwks, rsa_private_key, rsa_public_jwk
from tests.provisioning.stack import Stack, database_url, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir, status_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

BACKUP = PROJECT_DIR / "scripts" / "backup.sh"
RESTORE = PROJECT_DIR / "scripts" / "restore.sh"


def listed() -> set[str]:
    """The client_ids of the registrations the portal made, as the server lists them."""
    found = AuthServerClient().portal_registrations()
    assert found is not None
    return {item.client_id for item in found}


def token_scope(token: str) -> set[str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return set(claims["scope"].split())


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - the project's own scripts
        args, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def restored_database() -> Iterator[str]:
    """A new, empty database beside the test database (``createdb``), dropped afterwards."""
    db = connection.settings_dict
    name = f"{db['NAME']}_restored_{uuid.uuid4().hex[:8]}"
    cli = ["--host", str(db["HOST"]), "--port", str(db["PORT"]), "--username", str(db["USER"])]
    env = {"PGPASSWORD": str(db["PASSWORD"])}
    run(["createdb", *cli, name], env)
    try:
        yield f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        run(["dropdb", "--force", *cli, name], env)


def test_a_restored_backup_and_the_reconciler_bring_server_and_gateway_back_to_exactly_it(
    stack: Stack, tmp_path: Path, restored_database: str
) -> None:
    stack.start_worker()
    stack.start_close_worker()
    # State A: a client with two active grants.
    vendor = Vendor()
    patient, observation = vendor.order("patient.read", "observation.write")
    token_a = vendor.token_once_active(stack, patient, observation)
    client_a = vendor.client_id()
    scopes_a = token_scope(token_a)
    assert scopes_a == {"nhn:ksp/patient.read", "nhn:ksp/observation.write"}
    passing_a = stack.gateway.values()
    assert len(passing_a) == 2
    dump = tmp_path / "backup" / "tilgang.dump"
    run([str(BACKUP), str(dump)], {"DATABASE_URL": database_url()})

    # State B: A's write grant revoked, A's key rotated, a new client registered and granted.
    services.grant_revoke(grant=observation, actor=vendor.kommune_admin)
    wait_for(lambda: status_of(observation) == "revoked", timeout=DEADLINE, what="revoked")
    services.client_jwks_rotate(
        client=vendor.client, jwks=jwks(rsa_public_jwk("key-2", seed=1)), actor=vendor.admin
    )
    new_key = rsa_private_key(1)
    wait_for(
        lambda: stack.token(client_a, new_key, kid="key-2").status_code == 200,
        timeout=DEADLINE,
        what="the rotated key accepted",
    )
    newcomer = Vendor()
    [newcomer_grant] = newcomer.order("patient.read")
    token_b = newcomer.token_once_active(stack, newcomer_grant)
    client_b = newcomer.client_id()
    newcomer_path = fhir(newcomer.kommune, "Patient/1")
    assert stack.call(newcomer_path, token_b).status_code == 200
    assert {client_a, client_b} <= listed()

    # The restore, with the processes stopped (README): the workers served the old database.
    for worker in stack.workers:
        stop(worker)
    env = {**stack.env, "DATABASE_URL": restored_database}
    run([str(RESTORE), "--no-reconcile", str(dump)], env)

    # Restored, not yet reconciled: the server and the gateway still hold B. (What the
    # assertions below catch when the reconciler does not run.)
    assert client_b in listed()
    assert stack.call(newcomer_path, token_b).status_code == 200
    assert stack.token(client_a, vendor.key).status_code == 401  # A's key: B rotated it away

    run([str(PROJECT_DIR / ".venv" / "bin" / "python"), "manage.py", "reconcile"], env)

    # The authorization server holds exactly A's registrations, with A's keys and scopes.
    assert listed() == {client_a}
    assert token_scope(stack.access_token(client_a, vendor.key)) == scopes_a
    assert stack.token(client_a, new_key, kid="key-2").status_code == 401
    assert stack.token(client_b, newcomer.key).status_code == 401
    # The gateway passes exactly A's grants: the write grant active in A passes again, the
    # newcomer's token (issued before the restore, still unexpired) is refused.
    assert stack.gateway.values() == passing_a
    token_restored = stack.access_token(client_a, vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), token_restored).status_code == 200
    assert (
        stack.call(fhir(vendor.kommune, "Observation"), token_restored, "POST").status_code == 200
    )
    assert stack.call(newcomer_path, token_b).status_code == 403
    # HAProxy started again from its files alone agrees.
    stack.stop_haproxy()
    stack.start_haproxy()
    assert stack.gateway.values() == passing_a
    assert stack.call(newcomer_path, token_b).status_code == 403
    # Each removal at the server is in the restored database's audit trail.
    with psycopg.connect(restored_database) as db:
        rows = db.execute(
            "SELECT object_type, after->>'client_id' FROM audit_auditevent"
            " WHERE action = 'reconcile.registration_unknown' AND object_id = %s",
            [str(newcomer.client.pk)],
        ).fetchall()
    assert rows == [("tenants.oauthclient", client_b)]


def _register_behind_the_portals_back(software_id: str | None) -> tuple[str, str, str]:
    """A registration at the server that the portal's database does not hold: client_id,
    registration_client_uri and registration access token."""
    body: dict[str, Any] = {
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks(rsa_public_jwk("key-1", seed=3)),
        "scope": "nhn:ksp/patient.read",
    }
    if software_id is not None:
        body["software_id"] = software_id
    registration = AuthServerClient().register(body)
    return (
        registration.client_id,
        registration.registration_client_uri,
        registration.registration_access_token,
    )


def test_the_reconciler_removes_only_the_portals_registrations_the_database_does_not_know(
    stack: Stack,
) -> None:
    server = AuthServerClient()
    # Someone else's client at the same server (no portal software_id), and one with a UUID
    # software_id whose client_id is not the portal's derivation: neither is the portal's.
    foreign_id, foreign_uri, foreign_token = _register_behind_the_portals_back(None)
    assert not foreign_id.startswith("tilgang-")
    # The portal's: a client it no longer knows, one it knows but removed without a
    # registration row, and one it wants that a worker is registering (no row yet).
    unknown_id, unknown_uri, unknown_token = _register_behind_the_portals_back(str(uuid.uuid4()))
    removed = ClientFactory(removed_at=timezone.now())
    removed_id, _, _ = _register_behind_the_portals_back(str(removed.pk))
    wanted = ClientFactory()
    wanted_id, _, _ = _register_behind_the_portals_back(str(wanted.pk))
    assert {unknown_id, removed_id, wanted_id} <= listed()

    report = reconcile()

    assert foreign_id not in listed()  # not the portal's: never listed, never touched
    assert server.read(foreign_uri, foreign_token)["client_id"] == foreign_id
    with pytest.raises(RegistrationGone):
        server.read(unknown_uri, unknown_token)
    assert unknown_id not in listed()
    assert removed_id not in listed()
    assert wanted_id in listed()  # the database wants it: registered as the database says
    assert ClientRegistration.objects.get(client=wanted).server_client_id == wanted_id
    assert report.heals.count("reconcile.registration_unknown") >= 2
    events = AuditEvent.objects.filter(action="reconcile.registration_unknown")
    assert events.get(object_id=str(removed.pk)).after["client_id"] == removed_id
    assert events.filter(after__client_id=unknown_id).count() == 1
    assert not events.filter(object_id=str(wanted.pk)).exists()
    server.delete(foreign_uri, foreign_token)


def test_a_registrations_listing_needs_the_initial_access_token(stack: Stack) -> None:
    endpoint = settings.OIDC_OP_REGISTRATIONS_ENDPOINT
    assert requests.get(endpoint, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-initial-access-token"}
    assert requests.get(endpoint, headers=wrong, timeout=10).status_code == 401
    assert requests.post(endpoint, timeout=10).status_code == 405


def test_restore_refuses_a_database_that_is_not_empty(stack: Stack, tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [str(RESTORE), "--no-reconcile", str(tmp_path / "none.dump")],
        env={**os.environ, **stack.env, "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "not empty" in result.stderr
