"""National data for the benchmark, seeded in bulk: every kommune, vendors with products and
clients, signed instructions, grants that are active at the authorization server and the gateway,
and an audit trail (COPY)."""

from __future__ import annotations

import datetime
import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import CONTENT, canonical, link
from audit.models import chain_tail_locked
from bench.scale import Scale
from orders.models import (
    Access,
    Delegation,
    DelegationItem,
    Grant,
    GrantStatus,
    Instruction,
    Service,
)
from provisioning.authserver import AuthServerClient, client_metadata
from provisioning.models import ClientRegistration
from provisioning.reconcile import desired_entries, resource_map
from provisioning.runner import gateway, metadata_hash
from tenants.models import (
    ClientKey,
    Environment,
    Kommune,
    Membership,
    OAuthClient,
    Organisation,
    Product,
    Role,
)
from tenants.services import organisation_permissions_sync
from tenants.validators import orgnr_from

#: What each system type may be granted, as the catalogue says (service code, access).
ALLOWED = {
    "VFT": [
        ("patient", "read"),
        ("care-plan", "read"),
        ("observation", "write"),
        ("journaling", "write"),
    ],
    "DHO": [("observation", "write")],
    "EPJ": [("observation", "read"), ("journaling", "read"), ("patient", "write")],
}


@dataclass
class World:
    nhn: Organisation
    kommuner: list[Organisation]
    bench_vendor: Organisation
    bench_product: Product
    vendor_admin: User
    kommune_admin: User
    auditor: User
    operator: User


def _user(username: str) -> User:
    user, _ = User.objects.get_or_create(username=username, defaults={"email": username})
    return user


def _member(organisation: Organisation, user: User, role: str) -> None:
    Membership.objects.get_or_create(
        organisation=organisation,
        email=user.username,
        defaults={"user": user, "role": role, "bound_at": timezone.now()},
    )


@transaction.atomic
def organisations(scale: Scale, public_jwk: dict[str, Any]) -> World:
    register = list(Kommune.objects.order_by("number")[: scale.kommuner])
    kommuner = Organisation.objects.bulk_create(
        Organisation(
            orgnr=orgnr_from(80000000 + i * 11),
            name=f"{k.name} kommune",
            kind=Organisation.Kind.KOMMUNE,
            kommune=k,
        )
        for i, k in enumerate(register)
    )
    nhn = Organisation.objects.create(
        orgnr="994598759", name="Norsk helsenett SF", kind=Organisation.Kind.OPERATOR
    )
    vendors = Organisation.objects.bulk_create(
        Organisation(orgnr=orgnr_from(70000000 + i * 11), name=f"Vendor {i} AS", kind="vendor")
        for i in range(scale.vendors)
    )
    types = itertools.cycle(["VFT", "VFT", "VFT", "VFT", "DHO", "EPJ"])
    # NHN has verified every bench product (production orders wait for that).
    now = timezone.now()
    products = Product.objects.bulk_create(
        Product(
            vendor=v, name=f"System {i}", system_type=t, verified_system_type=t, verified_at=now
        )
        for i, (v, t) in enumerate(zip(vendors, types, strict=False))
    )
    bench_vendor = Organisation.objects.create(
        orgnr=orgnr_from(60000000), name="Bench AS", kind=Organisation.Kind.VENDOR
    )
    bench_product = Product.objects.create(
        vendor=bench_vendor,
        name="Bench VFT",
        system_type="VFT",
        verified_system_type="VFT",
        verified_at=now,
    )

    # Clients, each with the benchmark's public key, spread over the vendors.
    clients = OAuthClient.objects.bulk_create(
        OAuthClient(
            vendor=products[i % len(products)].vendor,
            product=products[i % len(products)],
            name=f"Client {i}",
            environment=Environment.PRODUCTION,
        )
        for i in range(scale.clients)
    )
    ClientKey.objects.bulk_create(
        ClientKey(client=c, kid=public_jwk["kid"], kty="RSA", alg="RS256", jwk=public_jwk)
        for c in clients
    )

    # Every kommune has signed an instruction covering every service; the bench vendor holds a
    # delegation from each.
    services = list(Service.objects.all())
    signer = _user("signer@bench.example")
    now = timezone.now()
    instructions = Instruction.objects.bulk_create(
        Instruction(
            kommune=k,
            version=1,
            subject_matter="Velferdsteknologi",
            duration="Løpende",
            nature_and_purpose="Innsamling og tilgjengeliggjøring",
            personal_data_categories=["helse"],
            data_subject_categories=["pasienter"],
            retention="Så lenge tjenesten ytes",
            contact_name="Kari",
            contact_email="kari@bench.example",
            signed_by=signer,
            signed_by_name="Kari",
            signed_at=now,
        )
        for k in kommuner
    )
    Through = Instruction.services.through
    Through.objects.bulk_create(
        Through(instruction_id=i.pk, service_id=s.pk) for i in instructions for s in services
    )
    delegations = Delegation.objects.bulk_create(
        Delegation(kommune=k, vendor=bench_vendor, valid_from=timezone.localdate())
        for k in kommuner
    )
    DelegationItem.objects.bulk_create(
        DelegationItem(delegation_id=d.pk, service_id=s.pk, access=access)
        for d in delegations
        for s in services
        for access in Access.values
    )

    # Grants: each client serves its own run of kommuner with what its system type may do.
    by_code = {s.code: s for s in services}
    per_client = max(1, scale.grants // max(1, scale.clients))
    grants = []
    for j, client in enumerate(clients):
        allowed = ALLOWED[client.product.system_type]  # type: ignore[union-attr]
        for t in range(per_client):
            kommune = kommuner[(j * per_client + t) % len(kommuner)]
            code, access = allowed[(j * per_client + t) // len(kommuner) % len(allowed)]
            service = by_code[code]
            grants.append(
                Grant(
                    client=client,
                    kommune=kommune,
                    service=service,
                    access=access,
                    scope=service.scope_for(access),
                    instruction=instructions[(j * per_client + t) % len(kommuner)],
                    approved_automatically=True,
                    status=GrantStatus.ACTIVE,
                )
            )
    Grant.objects.bulk_create(grants, batch_size=5000, ignore_conflicts=True)

    # The EPJ transition register: each kommune's EPJ; two in three plan a switch (2026 to 2028),
    # every other one uses VKP, so the register's risk list reads grants of many kommuner.
    epjs = [p for p in products if p.system_type == "EPJ"]
    for i, kommune in enumerate(kommuner if epjs else []):  # the tiny scale has no EPJ vendor
        kommune.epj_product = epjs[i % len(epjs)]
        kommune.uses_vkp = i % 2 == 0
        if i % 3 != 2:
            kommune.epj_switch_product = epjs[(i + 1) % len(epjs)]
            kommune.epj_switch_date = datetime.date(2026 + i % 3, 1 + i % 12, 1)
    Organisation.objects.bulk_update(
        kommuner, ["epj_product", "uses_vkp", "epj_switch_product", "epj_switch_date"]
    )

    people = {
        "vendor_admin": (bench_vendor, Role.VENDOR_ADMIN),
        "kommune_admin": (kommuner[0], Role.KOMMUNE_ADMIN),
        "auditor": (nhn, Role.NHN_AUDITOR),
        "operator": (nhn, Role.NHN_OPERATOR),
    }
    users = {}
    for name, (organisation, role) in people.items():
        users[name] = _user(f"{name}@bench.example")
        _member(organisation, users[name], role)
    for organisation in {o.pk: o for o, _ in people.values()}.values():
        organisation_permissions_sync(organisation=organisation)
    return World(
        nhn=nhn,
        kommuner=kommuner,
        bench_vendor=bench_vendor,
        bench_product=bench_product,
        vendor_admin=users["vendor_admin"],
        kommune_admin=users["kommune_admin"],
        auditor=users["auditor"],
        operator=users["operator"],
    )


def registrations(threads: int = 8) -> int:
    """Register the seeded clients at the authorization server with their grants' scopes."""
    clients = list(
        OAuthClient.objects.filter(registration__isnull=True, purpose="fhir", removed_at=None)
        .exclude(name__startswith="Bench")
        .prefetch_related("keys")
    )
    scopes: dict[Any, set[str]] = {}
    for client_pk, scope in Grant.objects.filter(status=GrantStatus.ACTIVE).values_list(
        "client_id", "scope"
    ):
        scopes.setdefault(client_pk, set()).add(scope)

    def register(client: OAuthClient) -> ClientRegistration:
        metadata = client_metadata(
            software_id=str(client.pk),
            name=client.name,
            jwks={"keys": [k.jwk for k in client.keys.all()]},
            scopes=sorted(scopes.get(client.pk, set())),
        )
        result = AuthServerClient().register(metadata)  # a session per call: threads
        registration = ClientRegistration(
            client=client,
            server_client_id=result.client_id,
            registration_client_uri=result.registration_client_uri,
            metadata_hash=metadata_hash(metadata),
        )
        registration.registration_access_token = result.registration_access_token
        return registration

    with ThreadPoolExecutor(threads) as pool:
        made = list(pool.map(register, clients))
    ClientRegistration.objects.bulk_create(made, batch_size=1000)
    for registration in made:
        registration.client.client_id = registration.server_client_id
    OAuthClient.objects.bulk_update([r.client for r in made], ["client_id"], batch_size=1000)
    return len(made)


def gateway_entries(limit: int | None = None) -> int:
    """Load the gateway with the desired entries (all, or the first ``limit``)."""
    entries = desired_entries()
    if limit is not None:
        entries = entries[:limit]
    for gw in gateway():
        gw.set_resources(resource_map())
        gw.replace_all(entries)
        gw.write_map_files(entries, resource_map())
    return len(entries)


def audit_trail(count: int, organisations: list[Organisation], *, skip: int = 0) -> int:
    """COPY ``count`` audit events, chained after the trail's last event (their hashes computed
    while the rows are written, under the chain's lock): a million rows in under a minute.
    ``skip`` continues an earlier call's ``count``: its events are older still."""
    columns = ", ".join(CONTENT) + ", chain_hash"
    start = timezone.now()
    before = {"status": "provisioning"}
    after = {"status": "active"}
    before_json, after_json = json.dumps(before), json.dumps(after)
    with transaction.atomic(), connection.cursor() as cursor:
        _last_id, previous = chain_tail_locked()
        raw = cursor.connection  # psycopg 3
        with raw.cursor() as pg, pg.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for i in range(skip, skip + count):
                organisation = organisations[i % len(organisations)]
                content = (
                    start - datetime.timedelta(seconds=i),  # a trail over some weeks
                    None,
                    "system:bench",
                    organisation.pk,
                    organisation.orgnr,
                    "grant.activated",
                    "orders.grant",
                    str(uuid.UUID(int=i)),
                    before,
                    after,
                    "",
                )
                previous = link(previous, canonical(*content))
                # COPY numbers the rows in the order written: id order is chain order.
                copy.write_row((*content[:8], before_json, after_json, "", previous))
    return count


def timed(label: str, timings: dict[str, float], fn: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    timings[label] = round(time.perf_counter() - started, 2)
    return result


def analyze() -> None:
    """Fresh planner statistics after the bulk load, as autovacuum would give them in time."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
