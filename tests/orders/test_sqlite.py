"""`make run`'s default database is a SQLite file: migrate, seed the demo, order, approve,
consent and take the reconciler's one-at-a-time lock there too.

The suite runs on PostgreSQL, so this runs `manage.py` in a subprocess against a temporary
SQLite file (and the embedded filesystem broker under a temporary var directory)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.components import manage

SCRIPT = """
from django.contrib.auth import get_user_model
from orders import services
from orders.models import ItemStatus, Service
from tenants.models import Environment, Organisation, Product
from tests.keys import jwks, rsa_public_jwk

users = get_user_model().objects
vendor_admin = users.create_user("vendor@sqlite.test")
kommune_admin = users.create_user("kommune@sqlite.test")
oslo = Organisation.objects.get(orgnr="958935420")
trygghet = Organisation.objects.get(orgnr="910000012")
alarm = Product.objects.get(vendor=trygghet)
patient = Service.objects.get(code="patient")

client = services.client_register(
    vendor=trygghet, product=alarm, name="Alarm test", environment=Environment.TEST,
    jwks=jwks(rsa_public_jwk()), actor=vendor_admin,
)
[by_vendor] = services.access_request_create(
    client=client, kommuner=[oslo], items=[services.ItemInput(service=patient, access="read")],
    initiated_by="vendor", actor=vendor_admin,
)
services.access_request_approve(request=by_vendor, actor=kommune_admin)
assert by_vendor.items.get().status == ItemStatus.APPROVED, by_vendor.items.get().status

other = services.client_register(
    vendor=trygghet, product=alarm, name="Alarm test 2", environment=Environment.TEST,
    jwks=jwks(rsa_public_jwk()), actor=vendor_admin,
)
[by_kommune] = services.access_request_create(
    client=other, kommuner=[oslo], items=[services.ItemInput(service=patient, access="read")],
    initiated_by="kommune", actor=kommune_admin,
)
assert by_kommune.items.get().status == ItemStatus.AWAITING_VENDOR
services.access_request_consent(request=by_kommune, actor=vendor_admin)
assert by_kommune.items.get().status == ItemStatus.APPROVED, by_kommune.items.get().status

from rest_framework.test import APIClient
from django.utils import timezone
from tenants.models import Membership, Role

from tenants.services import organisation_permissions_sync

for organisation, role, person in (
    (trygghet, Role.VENDOR_ADMIN, vendor_admin),
    (oslo, Role.KOMMUNE_ADMIN, kommune_admin),
):  # the demo's invitations, as if their people had logged in
    Membership.objects.filter(organisation=organisation, role=role).update(
        user=person, bound_at=timezone.now()
    )
    organisation_permissions_sync(organisation=organisation)
api = APIClient(HTTP_HOST="localhost")
api.force_authenticate(vendor_admin)
made = api.post(
    "/api/v1/access-requests/",
    {"client": str(client.pk), "kommune": oslo.orgnr,
     "items": [{"service": "observation", "access": "write"}]},
    format="json",
)
assert made.status_code == 201, made.content
for path in ("/api/v1/access-requests/", "/api/v1/grants/", "/api/v1/products/",
             "/api/v1/clients/", "/api/v1/delegations/"):
    listed = api.get(path)
    assert listed.status_code == 200, (path, listed.content[:500])
kommune_api = APIClient(HTTP_HOST="localhost")
kommune_api.force_authenticate(kommune_admin)
approve = f"/api/v1/access-requests/{made.json()['id']}/approve/"
approved = kommune_api.post(approve, {}, format="json")
assert approved.status_code == 200, approved.content

import datetime
from orders.models import Grant, GrantPeriod

# Who had access when: periods opened as the runner opens them, one closed by a revocation.
granted = list(Grant.objects.filter(client=client))
services.grant_periods_open(grants=granted, at=timezone.now() - datetime.timedelta(hours=1))
services.grant_revoke(grant=granted[0], actor=kommune_admin)
assert GrantPeriod.objects.filter(ended_at__isnull=False).count() == 1
ever = kommune_api.get("/api/v1/access-history/", {"from": "2020-01-01T00:00"})
assert ever.status_code == 200, ever.content[:500]
assert ever.json()["count"] == len(granted), ever.json()
now = kommune_api.get("/api/v1/access-history/", {"format": "csv"})
assert now.status_code == 200, now
assert len(b"".join(now.streaming_content).decode().splitlines()) == len(granted), "header + rows"

from provisioning import reconcile

with reconcile.reconcile_lock():  # a reconcile running now: the next one skips
    assert reconcile.reconcile().skipped
reconcile_lock = reconcile.reconcile_lock
with reconcile_lock() as first:
    with reconcile_lock() as second:
        assert (first, second) == (True, False), (first, second)
with reconcile_lock() as again:
    assert again, "released"
print("SQLITE-OK")
"""


def test_make_run_s_sqlite_database_migrates_seeds_orders_and_reconciles(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tilgang.sqlite3'}",
        "TILGANG_VAR_DIR": str(tmp_path / "var"),
        "GATEWAY_DIR": str(tmp_path / "var" / "gateway"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    for step in (("migrate", "--no-input", "-v0"), ("seed_demo",), ("shell", "-c", SCRIPT)):
        done = manage(*step, env=env)
        assert done.returncode == 0, (step, done.stdout[-3000:], done.stderr[-3000:])
    assert "SQLITE-OK" in done.stdout
