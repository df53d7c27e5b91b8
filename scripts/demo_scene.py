"""The demo after some weeks of use, so that every page has something to show: signed and draft
instructions, delegations in force, revoked and starting later, orders with every decision of
the rules, grants active, failed and being revoked, clients with old and new keys, a job that
gave up, a suspended vendor, a product NHN has not verified, an invitation, EHR switch plans (one
kommune at risk of losing VKP), a vendor whose access Oslo must confirm again soon, the audit
trail all of it wrote, and two weeks of calls through the gateway.

``make screenshots`` (scripts/screenshots.py) and the browser tests' sweep of every page
(tests/browser/test_every_page.py) put it on top of ``seed_demo``, each in a database of its
own: ``make run``'s demo still starts clean.

What people do goes through the service functions the pages and the API call, as those people;
only what the provisioning workers and the passing of time do is written directly (a client
registered at the authorization server, a grant active or failed, a job that gave up, a key
that is 400 days old, grants approved eleven months ago).
"""

from __future__ import annotations

import base64
import datetime
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import Notice
from orders import services
from orders.models import (
    AccessRequest,
    AccessRequestItem,
    Delegation,
    Grant,
    GrantStatus,
    Instruction,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from provisioning import access_log
from recertification.selectors import months_later
from recertification.services import recertifications_check
from tenants.models import (
    ClientKey,
    Environment,
    Membership,
    OAuthClient,
    Organisation,
    Product,
    Role,
)
from tenants.services import (
    kommune_epj_set,
    membership_invite,
    memberships_bind,
    product_register,
)

#: The demo's people who act in the scene (``seed_demo``'s logins), with the names they sign with.
NAMES = {
    "admin@oslo.example": ("Kari", "Nordmann"),
    "admin@bergen.example": ("Ola", "Berg"),
    "admin@trondheim.example": ("Ingrid", "Dahl"),
    "admin@trygghet.example": ("Per", "Hansen"),
    "admin@hjemme.example": ("Sara", "Lie"),
    "admin@journal.example": ("Jon", "Moe"),
    "admin@helseplattformen.example": ("Eva", "Strand"),
    "drift@nhn.example": ("Nina", "Drift"),
}
INSTRUCTION = {
    "subject_matter": "Velferdsteknologi og digital hjemmeoppfølging i hjemmetjenesten",
    "duration": "Til avtalen sies opp",
    "nature_and_purpose": (
        "Innhenting og deling av helseopplysninger mellom kommunens journal og "
        "velferdsteknologi, for å yte forsvarlige helse- og omsorgstjenester."
    ),
    "personal_data_categories": ["helseopplysninger", "kontaktopplysninger"],
    "data_subject_categories": ["pasienter", "brukere av hjemmetjenesten"],
    "retention": "Så lenge tjenesten ytes, deretter etter pasientjournalloven",
    "sub_processors_acknowledged": ["Norsk helsenett SF"],
    "contact_name": "Kari Nordmann",
    "contact_email": "personvern@oslo.example",
    "contact_phone": "+47 21 80 21 80",
}
#: The error the authorization server gave the job that gave up.
JOB_ERROR = "HTTP 400 from the authorization server: invalid_client_metadata (jwks_uri)"


@dataclass(frozen=True)
class Scene:
    """What the pages show, for tests and screenshots to find them by."""

    nhn: Organisation
    oslo: Organisation
    bergen: Organisation
    trondheim: Organisation
    trygghet: Organisation
    hjemme: Organisation
    suspended: Organisation
    signed: Instruction  # Oslo's version in force
    draft: Instruction  # Oslo's next version, in progress
    delegation: Delegation  # Oslo to Trygghet AS, in force
    client: OAuthClient  # Trygghet AS's production client: an old and a new key
    test_client: OAuthClient
    order: AccessRequest  # Trygghet AS's order for Oslo: every decision of the rules
    test_order: AccessRequest  # its test client's, one grant of which Oslo is revoking now
    kommune_order: AccessRequest  # Oslo's own order for Trygghet's client: waits for consent
    waiting: AccessRequestItem  # an item of ``order`` that waits for Oslo's admin
    active_grant: Grant
    failed_grant: Grant
    failed_job: ProvisioningJob
    pending_job: ProvisioningJob  # the revocation's, which no worker has taken yet
    invited: Membership  # an invitation to Oslo, not yet taken up
    unverified: Product  # Hjemme AS's new product, which NHN has not verified
    opening: Service  # a service that opens in production next month


def _b64(number: int, length: int | None = None) -> str:
    raw = number.to_bytes(length or (number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(kid: str) -> dict[str, Any]:
    """A fresh RSA public key as a JWK (the private half is thrown away: nobody calls)."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    n = public.public_numbers().n
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64(n), "e": "AQAB"}


def ec_jwk(kid: str) -> dict[str, Any]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
        "crv": "P-256",
        "x": _b64(public.x, 32),
        "y": _b64(public.y, 32),
    }


def person(email: str) -> User:
    """The demo person as after their first login: a user bound to their invitations."""
    first, last = NAMES.get(email, ("", ""))
    user, _created = User.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": first, "last_name": last}
    )
    memberships_bind(user=user, identity=email)
    return user


def _items(*codes: str) -> list[services.ItemInput]:
    """``"patient.read"``, ... as the items of an order."""
    found = {s.code: s for s in Service.objects.all()}
    return [
        services.ItemInput(service=found[code], access=access)
        for code, access in (item.split(".") for item in codes)
    ]


def _delegated(*codes: str) -> list[services.DelegationItemInput]:
    return [
        services.DelegationItemInput(service=i.service, access=i.access, service_codes=("TA",))
        for i in _items(*codes)
    ]


def _order(
    client: OAuthClient,
    kommune: Organisation,
    actor: User,
    *codes: str,
    by: str = AccessRequest.Initiator.VENDOR,
) -> AccessRequest:
    [made] = services.access_request_create(
        client=client, kommuner=[kommune], items=_items(*codes), initiated_by=by, actor=actor
    )
    return made


def _client(
    vendor: Organisation, name: str, environment: str, actor: User, *keys: dict[str, Any]
) -> OAuthClient:
    product = Product.objects.filter(vendor=vendor).order_by("created_at").first()
    return services.client_register(
        vendor=vendor,
        product=product,
        name=name,
        environment=environment,
        jwks={"keys": list(keys)},
        actor=actor,
    )


def _registered(client: OAuthClient, client_id: str, when: datetime.datetime) -> None:
    """What a worker does once the authorization server accepted the client."""
    OAuthClient.objects.filter(pk=client.pk).update(
        client_id=client_id, provisioning_status="provisioned", provisioned_at=when
    )


def _grant(item: AccessRequestItem) -> Grant:
    item.refresh_from_db()
    if item.grant is None:
        raise RuntimeError(f"{item.service.code}: {item.status} ({item.reason_code})")
    return item.grant


def _item(order: AccessRequest, code: str) -> AccessRequestItem:
    service, access = code.split(".")
    return order.items.get(service__code=service, access=access)


def _instruction(kommune: Organisation, actor: User, *, sign: bool) -> Instruction:
    made = services.instruction_create(
        kommune=kommune, actor=actor, services=list(Service.objects.all()), data=INSTRUCTION
    )
    return services.instruction_sign(instruction=made, actor=actor) if sign else made


def _gateway_traffic(now: datetime.datetime, *, oslo: str, trondheim: str) -> None:
    """Two weeks of calls through the gateway, written in its log format and loaded by the
    collector as the gateway's would be: Trygghet's reads of Oslo's patients, its refused reads
    of the care plans whose set-up failed, its test client's calls, the suspended vendor's
    refused writes in Trondheim, and a call without a valid token."""
    lines = []
    for n in range(42):  # about three a day
        at = now - datetime.timedelta(hours=8 * n + 1, minutes=7 * n % 60)
        lines.append(
            access_log.line_format(
                at=at,
                client_id="trygghet-alarm-prod",
                kommune=oslo,
                service="patient",
                access="read",
                environment="production",
                path=f"/{oslo}/fhir/Patient/{1000 + n % 9}",
                status=200,
                duration_ms=18 + n % 23,
            )
        )
    for n in range(5):
        lines.append(
            access_log.line_format(
                at=now - datetime.timedelta(hours=3 + 5 * n),
                client_id="trygghet-alarm-prod",
                kommune=oslo,
                service="care-plan",
                access="read",
                environment="production",
                path=f"/{oslo}/fhir/CarePlan",
                status=403,
            )
        )
    for n, (method, resource, status) in enumerate(
        [("GET", "Patient/1", 200), ("POST", "Observation", 201), ("POST", "Observation", 403)]
    ):
        lines.append(
            access_log.line_format(
                at=now - datetime.timedelta(days=2, hours=n),
                client_id="trygghet-alarm-test",
                kommune=oslo,
                service=resource.split("/")[0].lower(),
                access="read" if method == "GET" else "write",
                environment="test",
                method=method,
                path=f"/test/{oslo}/fhir/{resource}",
                status=status,
            )
        )
    lines.append(
        access_log.line_format(
            at=now - datetime.timedelta(hours=6),
            client_id="epic-trondheim",
            kommune=trondheim,
            service="patient",
            access="write",
            environment="production",
            method="PUT",
            path=f"/{trondheim}/fhir/Patient/77",
            status=403,
        )
    )
    lines.append(
        access_log.line_format(
            at=now - datetime.timedelta(hours=30), path=f"/{oslo}/fhir/Patient/1", status=401
        )
    )
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "access.log"
        access_log.lines_write(log, sorted(lines))
        access_log.log_collect(path=log, source="demo")


@transaction.atomic
def build() -> Scene:
    """Put the scene on top of ``seed_demo``'s organisations (run it first); once per database."""
    today = timezone.localdate()
    now = timezone.now()
    organisations = {o.orgnr: o for o in Organisation.objects.all()}
    nhn, oslo = organisations["994598759"], organisations["958935420"]
    trondheim, bergen = organisations["942110464"], organisations["964338531"]
    journal, trygghet = organisations["910000004"], organisations["910000012"]
    hjemme, helseplattformen = organisations["910000020"], organisations["910000039"]
    operator = person("drift@nhn.example")
    oslo_admin, bergen_admin = person("admin@oslo.example"), person("admin@bergen.example")
    trondheim_admin = person("admin@trondheim.example")
    trygghet_admin, hjemme_admin = person("admin@trygghet.example"), person("admin@hjemme.example")
    epic_admin = person("admin@helseplattformen.example")

    # The kommuner's instructions: Oslo's in force and its next version in progress.
    signed = _instruction(oslo, oslo_admin, sign=True)
    draft = services.instruction_create(
        kommune=oslo,
        actor=oslo_admin,
        services=list(Service.objects.exclude(code="medication-statement")),
        data={**INSTRUCTION, "retention": "Fem år etter siste kontakt", "contact_phone": ""},
    )
    _instruction(bergen, bergen_admin, sign=True)
    _instruction(trondheim, trondheim_admin, sign=True)

    # A service that opens in production next month: its orders wait for it.
    opening = Service.objects.get(code="medication-dispense")
    services.service_availability_set(
        service=opening,
        environment=Environment.PRODUCTION,
        available_from=today + datetime.timedelta(days=30),
        actor=operator,
    )

    # Oslo delegates to Trygghet AS; an old delegation to Journal AS was revoked; one to
    # Hjemme AS starts later.
    delegation = services.delegation_create(
        kommune=oslo,
        vendor=trygghet,
        items=_delegated(
            "patient.read", "care-plan.read", "observation.write", "medication-dispense.write"
        ),
        valid_from=today - datetime.timedelta(days=40),
        valid_until=None,
        actor=oslo_admin,
    )
    old = services.delegation_create(
        kommune=oslo,
        vendor=journal,
        items=_delegated("observation.read"),
        valid_from=None,
        valid_until=None,
        actor=oslo_admin,
    )
    services.delegation_revoke(delegation=old, actor=oslo_admin)
    services.delegation_create(
        kommune=oslo,
        vendor=hjemme,
        items=_delegated("observation.write"),
        valid_from=today + datetime.timedelta(days=14),
        valid_until=today + datetime.timedelta(days=380),
        actor=oslo_admin,
    )
    services.delegation_create(
        kommune=trondheim,
        vendor=helseplattformen,
        items=_delegated("patient.write", "care-plan.write"),
        valid_from=None,
        valid_until=None,
        actor=trondheim_admin,
    )

    # Trygghet AS's clients: production with a key 400 days old beside its new one, and test.
    client = _client(
        trygghet,
        "Trygghet Alarm produksjon",
        Environment.PRODUCTION,
        trygghet_admin,
        rsa_jwk("alarm-2025"),
        ec_jwk("alarm-2026"),
    )
    ClientKey.objects.filter(client=client, kid="alarm-2025").update(
        created_at=now - datetime.timedelta(days=400)
    )
    test_client = _client(
        trygghet, "Trygghet Alarm test", Environment.TEST, trygghet_admin, ec_jwk("alarm-test")
    )
    hjemme_client = _client(
        hjemme, "Hjemme Oppfølging", Environment.PRODUCTION, hjemme_admin, ec_jwk("hjemme-1")
    )
    epic_client = _client(
        helseplattformen, "Epic Trondheim", Environment.PRODUCTION, epic_admin, rsa_jwk("epic-1")
    )
    for made, client_id in (
        (client, "trygghet-alarm-prod"),
        (test_client, "trygghet-alarm-test"),
        (hjemme_client, "hjemme-oppfolging"),
        (epic_client, "epic-trondheim"),
    ):
        _registered(made, client_id, now - datetime.timedelta(days=30))

    # Orders: every decision the rules make, for Oslo and Bergen.
    order = _order(
        client,
        oslo,
        trygghet_admin,
        "patient.read",  # delegated: approved
        "care-plan.read",  # delegated: approved, then the set-up fails
        "episode-of-care.read",  # not delegated: waits for Oslo's admin
        "condition.read",  # only for kommuner on Epic: rejected
        "medication-dispense.write",  # delegated, but opens next month
    )
    _order(client, bergen, trygghet_admin, "patient.read", "care-plan.read")
    test_order = _order(test_client, oslo, trygghet_admin, "patient.read", "observation.write")
    _order(hjemme_client, oslo, hjemme_admin, "observation.write")
    kommune_order = _order(
        client, oslo, oslo_admin, "journaling.write", by=AccessRequest.Initiator.KOMMUNE
    )
    epic_order = _order(epic_client, trondheim, epic_admin, "patient.write", "care-plan.write")

    # What the workers did: grants active, one failed; every job so far done.
    active_grant = _grant(_item(order, "patient.read"))
    failed_grant = _grant(_item(order, "care-plan.read"))
    live = [active_grant, *(_grant(item) for item in test_order.items.all())]
    live += [_grant(item) for item in epic_order.items.all()]
    activated = now - datetime.timedelta(days=20)
    Grant.objects.filter(pk__in=[g.pk for g in live]).update(
        status=GrantStatus.ACTIVE, status_changed_at=activated
    )
    services.grant_periods_open(grants=live, at=activated)  # who had access when
    # The orders were placed weeks ago: the national overview's grants over time show them.
    Grant.objects.update(created_at=now - datetime.timedelta(days=21))
    AccessRequest.objects.update(created_at=now - datetime.timedelta(days=21))
    Grant.objects.filter(pk=failed_grant.pk).update(
        status=GrantStatus.FAILED,
        status_changed_at=now - datetime.timedelta(hours=3),
        status_reason_code="gave_up",
        status_reason_params={"attempts": 8, "error": JOB_ERROR},
    )
    done = now - datetime.timedelta(days=20)
    ProvisioningJob.objects.update(status=ProvisioningJob.Status.DONE, attempts=1, finished_at=done)

    # Oslo revokes the test client's write access; NHN suspends Helseplattformen AS.
    services.grant_revoke(
        grant=Grant.objects.get(client=test_client, service__code="observation"),
        actor=oslo_admin,
        reason="Testperioden er over.",
    )
    services.vendor_suspend(
        vendor=helseplattformen,
        actor=operator,
        reason="Avtalen med NHN er midlertidig stanset etter et sikkerhetsavvik.",
    )
    failed_job = ProvisioningJob.objects.create(
        client=client,
        grant=failed_grant,
        reason="grant.approved",
        status=ProvisioningJob.Status.FAILED,
        attempts=8,
        last_error=JOB_ERROR,
        finished_at=now - datetime.timedelta(hours=3),
    )

    # People, products and the EHR plan.
    invited = membership_invite(
        organisation=oslo, email="leser@oslo.example", role=Role.KOMMUNE_READER, actor=oslo_admin
    )
    unverified = product_register(
        vendor=hjemme, name="Hjemme Sensor", system_type="DHO", actor=hjemme_admin
    )
    epic = Product.objects.get(vendor=helseplattformen, is_epic=True)
    kommune_epj_set(
        kommune=oslo,
        product=oslo.epj_product,
        switch_product=epic,
        switch_date=today + datetime.timedelta(days=120),
        uses_vkp=True,  # with services it relies on not yet active: on NHN's risk list
        actor=oslo_admin,
    )
    bergen.refresh_from_db()
    kommune_epj_set(
        kommune=bergen,
        product=bergen.epj_product,
        switch_product=Product.objects.get(vendor=journal, system_type="EPJ"),
        switch_date=today + datetime.timedelta(days=500),
        uses_vkp=False,
        actor=bergen_admin,
    )
    trondheim.refresh_from_db()
    kommune_epj_set(kommune=trondheim, product=trondheim.epj_product, uses_vkp=True)

    # Nearly a year on: Oslo must confirm Trygghet AS's access again within three weeks (the
    # clock counts from the approvals, as if they were eleven months ago), and the daily check
    # has reminded Oslo's admins.
    due = today + datetime.timedelta(days=20)
    approved = months_later(due, -settings.RECERTIFICATION_MONTHS)
    Grant.objects.live().filter(kommune=oslo, client__vendor=trygghet).update(
        created_at=timezone.make_aware(datetime.datetime.combine(approved, datetime.time(10)))
    )
    recertifications_check(now=now)

    _gateway_traffic(now, oslo=oslo.orgnr, trondheim=trondheim.orgnr)

    waiting = _item(order, "episode-of-care.read")
    decided = {
        code: _item(order, code).status
        for code in ("episode-of-care.read", "condition.read", "medication-dispense.write")
    }
    expected = {
        "episode-of-care.read": ItemStatus.AWAITING_KOMMUNE,
        "condition.read": ItemStatus.REJECTED,
        "medication-dispense.write": ItemStatus.AWAITING_AVAILABILITY,
    }
    if decided != expected:  # the rules changed: the scene no longer shows every decision
        raise RuntimeError(f"the order's items were decided {decided}, not {expected}")
    if not kommune_order.items.filter(status=ItemStatus.AWAITING_VENDOR).exists():
        raise RuntimeError("Oslo's own order does not wait for the vendor's consent")
    if not Notice.objects.filter(kind="recertification_due", organisation=oslo).exists():
        raise RuntimeError("Oslo's admins were not reminded to confirm Trygghet AS's access")
    if Grant.objects.filter(Q(client=epic_client), ~Q(status=GrantStatus.REVOKING)).exists():
        raise RuntimeError("the suspension left a grant of the suspended vendor open")
    return Scene(
        nhn=nhn,
        oslo=Organisation.objects.get(pk=oslo.pk),
        bergen=bergen,
        trondheim=trondheim,
        trygghet=trygghet,
        hjemme=hjemme,
        suspended=Organisation.objects.get(pk=helseplattformen.pk),
        signed=Instruction.objects.get(pk=signed.pk),
        draft=draft,
        delegation=delegation,
        client=client,
        test_client=test_client,
        order=order,
        test_order=test_order,
        kommune_order=kommune_order,
        waiting=waiting,
        active_grant=Grant.objects.get(pk=active_grant.pk),
        failed_grant=Grant.objects.get(pk=failed_grant.pk),
        failed_job=failed_job,
        pending_job=ProvisioningJob.objects.get(
            client=test_client, status=ProvisioningJob.Status.PENDING
        ),
        invited=invited,
        unverified=unverified,
        opening=opening,
    )
