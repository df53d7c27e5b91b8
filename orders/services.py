"""Writes of the ordering journey. Each function is the one path for its change: it checks the
rule, writes the change and its audit events in one transaction, and leaves a provisioning job
(the outbox) where the outside world must follow. Nothing here calls out.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Greatest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit.context import current_request_id, request_id_bound
from audit.services import audit_event_record, audit_events_batched
from notifications.services import notifications_batched, notify
from orders import policy
from orders.models import (
    LIVE_GRANT_STATUSES,
    WAITING_STATUSES,
    AccessRequest,
    AccessRequestItem,
    Delegation,
    DelegationItem,
    Grant,
    GrantPeriod,
    GrantStatus,
    Instruction,
    ItemStatus,
    ProvisioningJob,
    Service,
    ServiceAvailability,
    SuspendedGrant,
    Suspension,
)
from portal.db import create_validated
from portal.exceptions import Conflict
from portal.locks import lock_key
from tenants.hooks import PolicyInputsChanged
from tenants.jwks import MAX_KEYS, PublicKey, validate_jwks
from tenants.models import (
    ClientKey,
    Environment,
    Membership,
    OAuthClient,
    Organisation,
    Product,
    Role,
)
from tenants.services import check_role, organisation_permissions_sync

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _person(user: User | None) -> str:
    if user is None:
        return _("the system")
    return user.get_full_name() or user.get_username()


# --- What people hear of (notifications.services.notify) ---------------------------------------

#: Items a notification lists; the rest are counted.
NOTIFIED_ITEMS = 20


def in_each_language(word: Callable[[], str]) -> dict[str, str]:
    """``word()`` in every language of the portal, for a notification's templates."""
    worded = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            worded[language] = str(word())
    return worded


def _item_notified(item: AccessRequestItem, *, kommune: bool = False) -> dict[str, Any]:
    """An item as the notifications' templates list it (``templates/emails/_items.txt``)."""
    said: dict[str, Any] = {
        "service": {"nb": item.service.name_nb, "en": item.service.name_en},
        "access": item.access,
    }
    if kommune:
        said["kommune"] = item.request.kommune.name
    if item.status == ItemStatus.REJECTED and item.reason_code:
        code, params = item.reason_code, item.reason_params
        said["reason"] = in_each_language(lambda: policy.reason_text(code, params))
    return said


def _items_notified(items: Sequence[AccessRequestItem], **kw: Any) -> dict[str, Any]:
    return {
        "items": [_item_notified(item, **kw) for item in items[:NOTIFIED_ITEMS]],
        "more": max(len(items) - NOTIFIED_ITEMS, 0),
        "total": len(items),
    }


def _waiting_notify(request: AccessRequest, items: Sequence[AccessRequestItem]) -> None:
    """Tell whoever the items of one order wait for: the kommune's admins (approval), or the
    vendor's admins (consent to a kommune's order). One notice per order and kommune."""
    client = request.client
    for status, organisation, role, kind, link in (
        (
            ItemStatus.AWAITING_KOMMUNE,
            request.kommune,
            Role.KOMMUNE_ADMIN,
            "request_waiting",
            "orders:approval",
        ),
        (
            ItemStatus.AWAITING_VENDOR,
            client.vendor,
            Role.VENDOR_ADMIN,
            "consent_waiting",
            "orders:order",
        ),
    ):
        waiting = [item for item in items if item.status == status]
        if not waiting:
            continue
        notify(
            kind=kind,
            organisation=organisation,
            roles=[role],
            params={
                "vendor": client.vendor.name,
                "client": client.name,
                "kommune": request.kommune.name,
                **_items_notified(waiting),
            },
            link=link,
            link_args={"pk": request.pk},
        )


def _decided_notify(
    request: AccessRequest, items: Sequence[AccessRequestItem], *, person: str, reason: str = ""
) -> None:
    """Tell the vendor's admins what a kommune admin decided on their order (one notice)."""
    approved = [i for i in items if i.status == ItemStatus.APPROVED]
    rejected = [i for i in items if i.status == ItemStatus.REJECTED]
    if not (approved or rejected):
        return
    client = request.client
    notify(
        kind="request_decided",
        organisation=client.vendor,
        roles=[Role.VENDOR_ADMIN],
        params={
            "kommune": request.kommune.name,
            "client": client.name,
            "person": person,
            "approved": [_item_notified(i) for i in approved[:NOTIFIED_ITEMS]],
            "rejected": [_item_notified(i) for i in rejected[:NOTIFIED_ITEMS]],
            "reason": reason,
        },
        link="orders:order",
        link_args={"pk": request.pk},
    )


# --- The outbox ---------------------------------------------------------------------------------


def provisioning_job_enqueue(
    *, client: OAuthClient, reason: str, grant: Grant | None = None
) -> ProvisioningJob:
    """Write the durable job row in the caller's transaction and send its task once it commits.

    The worker reads the client's desired state when it runs, so one pending job per client is
    enough: a later change finds it and rides along (the latest state wins). It locks that job
    until COMMIT, so a claim taking it waits for this change and reads it; a job a claim is
    taking right now (locked) is skipped, and this change gets a job of its own: never lost,
    and never a wait for a claim (which may wait for this transaction's grants). If the message
    is lost (a crash between COMMIT and publish, the broker down), the sweeper sends it again.
    """
    pending = (
        ProvisioningJob.objects.select_for_update(skip_locked=True)
        .filter(client=client, status=ProvisioningJob.Status.PENDING)
        .first()
    )
    if pending is not None:
        return pending
    job = ProvisioningJob.objects.create(
        client=client,
        grant=grant,
        reason=reason,
        sent_at=timezone.now(),
        request_id=current_request_id(),
    )
    provisioning_job_send_on_commit(job_id=job.pk, request_id=job.request_id)
    return job


PROVISIONING_TASK = "provisioning.run_job"
GATEWAY_CLOSE_TASK = "provisioning.gateway_close"
# The on-commit sends try once more on a new connection (a pooled one may be stale after a
# broker restart), without waiting: kombu's default publish retries held a write's answer for
# about 0.6 s per message with the broker refusing, and seconds per message when it does not
# answer; the sweeper is the retry. Not ``retry=False``: kombu then waits for a connection up
# to the connect timeout instead.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}


def _job_send(job_id: Any, request_id: str) -> None:
    try:
        with request_id_bound(request_id):
            current_app.send_task(
                PROVISIONING_TASK,
                args=[str(job_id)],
                ignore_result=True,
                retry_policy=PUBLISH_RETRY,
            )
    except Exception:  # the broker is down: the write stands, the sweeper sends the job
        logger.warning("provisioning job %s not sent (broker unreachable)", job_id, exc_info=True)
        ProvisioningJob.objects.filter(pk=job_id, status=ProvisioningJob.Status.PENDING).update(
            sent_at=None
        )


def provisioning_job_send_on_commit(*, job_id: Any, request_id: str) -> None:
    """Publish the job's task after COMMIT, by name: this layer never imports the workers. It
    carries ``request_id``, the job's (``ProvisioningJob.request_id``), whoever sends it.
    Nobody waits for its result (the job row is the outcome): without ``ignore_result`` Celery's
    Redis result backend would subscribe this process to a result channel on every send. With
    the broker down the write that committed still answers: the job is marked unsent and the
    sweeper sends it at its next round (``robust``: no failure here reaches the caller)."""
    transaction.on_commit(lambda: _job_send(job_id, request_id), robust=True)


def gateway_close_send_on_commit(*, grant_ids: list[Any]) -> None:
    """After COMMIT, have a worker close these grants at the gateway at once, beside the
    client's job (which may wait for a lease or for the authorization server). Routed to the
    queue of its own worker (``CELERY_TASK_ROUTES``). One try: with the broker down no worker
    would get it anyway, and the client's job, which the sweeper sends, closes them too."""
    ids = [str(pk) for pk in grant_ids]

    def send() -> None:
        try:
            current_app.send_task(
                GATEWAY_CLOSE_TASK, args=[ids], ignore_result=True, retry_policy=PUBLISH_RETRY
            )
        except Exception:  # noqa: BLE001 - the write stands; the job closes them
            logger.warning("gateway close of %s not sent (broker unreachable)", ids, exc_info=True)

    transaction.on_commit(send, robust=True)


# --- Data-processing instructions ---------------------------------------------------------------

INSTRUCTION_FIELDS = (
    "subject_matter",
    "duration",
    "nature_and_purpose",
    "personal_data_categories",
    "data_subject_categories",
    "sharing_scope",
    "shared_with",
    "retention",
    "sub_processors_acknowledged",
    "contact_name",
    "contact_email",
    "contact_phone",
)


def _instruction_snapshot(instruction: Instruction) -> dict[str, Any]:
    data = {name: getattr(instruction, name) for name in INSTRUCTION_FIELDS}
    data["services"] = sorted(s.code for s in instruction.services.all())
    data["version"] = instruction.version
    data["status"] = instruction.status
    return data


def _instruction_check(data: dict[str, Any]) -> None:
    scope = data.get("sharing_scope", Instruction.SharingScope.KOMMUNE_ONLY)
    shared_with = data.get("shared_with") or []
    if scope == Instruction.SharingScope.NAMED_ORGANISATIONS and not shared_with:
        raise ValidationError(
            {"shared_with": _("Name the organisations (orgnr) that may share the data.")}
        )
    if scope == Instruction.SharingScope.KOMMUNE_ONLY and shared_with:
        raise ValidationError(
            {"shared_with": _("Data shared inside the kommune only names no other organisation.")}
        )


#: What a signature needs besides at least one service: a draft filled in step by step may lack
#: these until then.
INSTRUCTION_FIELDS_TO_SIGN = (
    "subject_matter",
    "duration",
    "nature_and_purpose",
    "personal_data_categories",
    "data_subject_categories",
    "retention",
    "contact_name",
    "contact_email",
)


def instruction_missing(instruction: Instruction) -> list[str]:
    """The fields (``services`` among them) a draft must fill in before it can be signed."""
    missing = [name for name in INSTRUCTION_FIELDS_TO_SIGN if not getattr(instruction, name)]
    if not instruction.covered_service_ids:
        missing.insert(0, "services")
    return missing


def instruction_uncovered_grants(instruction: Instruction) -> QuerySet[Grant]:
    """The kommune's live production grants of services this instruction does not cover: those
    its signature revokes."""
    return (
        Grant.objects.live()
        .filter(kommune_id=instruction.kommune_id, client__environment=Environment.PRODUCTION)
        .exclude(service__in=instruction.services.values("pk"))
    )


def _kommune_inputs_lock(kommune: Organisation) -> None:
    """Lock the kommune's row before changing one of the policy's inputs that belong to it (its
    instruction in force, its delegations), as its EPJ change does. Orders and approvals in the
    kommune share-lock that row first (``_policy_rows_share``): either they wait for this change
    and decide on it, or it waits for them and its re-decision sees their items. Without it, an
    order placed while the kommune delegated the item was decided without the delegation, and the
    delegation's re-decision missed the order's item. NO KEY: rows that refer to the kommune may
    still be added meanwhile."""
    Organisation.objects.select_for_update(no_key=True).filter(pk=kommune.pk).first()


@transaction.atomic
def instruction_create(
    *, kommune: Organisation, actor: User, services: Sequence[Service], data: dict[str, Any]
) -> Instruction:
    """Start a new draft version of the kommune's instruction."""
    if kommune.kind != Organisation.Kind.KOMMUNE:
        raise ValidationError({"kommune": _("Only a kommune gives data-processing instructions.")})
    _instruction_check(data)
    # Lock the kommune: two drafts started together must not take the same version number.
    Organisation.objects.select_for_update().filter(pk=kommune.pk).first()
    last = Instruction.objects.filter(kommune=kommune).aggregate(v=Max("version"))["v"] or 0
    instruction = Instruction(kommune=kommune, version=last + 1, created_by=actor, **data)
    create_validated(instruction)
    instruction.services.set(services)
    audit_event_record(
        actor=actor,
        action="instruction.created",
        target=instruction,
        organisation=kommune,
        after=_instruction_snapshot(instruction),
    )
    return instruction


@transaction.atomic
def instruction_update(
    *,
    instruction: Instruction,
    actor: User,
    services: Sequence[Service] | None,
    data: dict[str, Any],
) -> Instruction:
    """Edit a draft; a signed instruction is immutable (Conflict). The audit trail records
    what changed, and nothing when nothing did."""
    instruction = Instruction.objects.select_for_update().get(pk=instruction.pk)
    if instruction.signed_at is not None:
        raise Conflict(
            _("Version %(version)s is signed and cannot change; start a new version.")
            % {"version": instruction.version}
        )
    before = _instruction_snapshot(instruction)
    merged = {name: getattr(instruction, name) for name in INSTRUCTION_FIELDS} | data
    _instruction_check(merged)
    for name, value in data.items():
        setattr(instruction, name, value)
    instruction.full_clean()
    instruction.save(update_fields=[*data.keys()] if data else None)
    if services is not None:
        instruction.services.set(services)
    after = _instruction_snapshot(instruction)
    if after != before:  # a step sent again as it was changed nothing: no event to record
        audit_event_record(
            actor=actor,
            action="instruction.updated",
            target=instruction,
            organisation=instruction.kommune,
            before=before,
            after=after,
        )
    return instruction


@transaction.atomic
def instruction_sign(*, instruction: Instruction, actor: User) -> Instruction:
    """Sign a draft: it becomes the version in force and is immutable from now on.

    The version it supersedes stays as history. Production grants of services this version no
    longer covers are revoked; items that waited for an instruction go on.
    """
    _kommune_inputs_lock(instruction.kommune)
    instruction = (
        Instruction.objects.select_for_update().select_related("kommune").get(pk=instruction.pk)
    )
    if instruction.signed_at is not None:
        raise Conflict(
            _("Version %(version)s was already signed by %(person)s at %(time)s.")
            % {
                "version": instruction.version,
                "person": instruction.signed_by_name,
                "time": timezone.localtime(instruction.signed_at).strftime("%Y-%m-%d %H:%M"),
            }
        )
    newer = Instruction.objects.signed().filter(
        kommune=instruction.kommune, version__gt=instruction.version
    )
    if newer.exists():
        raise Conflict(_("A newer version is already signed; this draft is out of date."))
    missing = instruction_missing(instruction)
    if missing:
        raise ValidationError(
            {
                name: _("An instruction covers at least one service.")
                if name == "services"
                else _("Fill this in before the instruction is signed.")
                for name in missing
            }
        )

    now = timezone.now()
    kommune = instruction.kommune
    Instruction.objects.signed().filter(kommune=kommune, superseded_at__isnull=True).update(
        superseded_at=now
    )
    instruction.signed_by = actor
    instruction.signed_by_name = _person(actor)
    instruction.signed_at = now
    instruction.save(update_fields=["signed_by", "signed_by_name", "signed_at"])
    audit_event_record(
        actor=actor,
        action="instruction.signed",
        target=instruction,
        organisation=kommune,
        after=_instruction_snapshot(instruction),
    )

    _grants_revoke(
        instruction_uncovered_grants(instruction),
        actor=actor,
        code="instruction_uncovered",
        params={"version": instruction.version},
    )
    _items_reevaluate(AccessRequestItem.objects.filter(request__kommune=kommune), actor=None)
    return instruction


# --- Delegations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DelegationItemInput:
    service: Service
    access: str
    service_codes: tuple[str, ...] = ()


def _delegation_items(delegation: Delegation) -> list[DelegationItem]:
    items = getattr(delegation, "ordered_items", None)
    if items is None:
        items = list(
            delegation.items.select_related("service").order_by("service__position", "access")
        )
    return items


def _delegation_snapshot(delegation: Delegation) -> dict[str, Any]:
    return {
        "kommune": delegation.kommune.orgnr,
        "vendor": delegation.vendor.orgnr,
        "items": [
            {"service": i.service.code, "access": i.access, "service_codes": i.service_codes}
            for i in _delegation_items(delegation)
        ],
        "valid_from": delegation.valid_from.isoformat(),
        "valid_until": delegation.valid_until.isoformat() if delegation.valid_until else None,
        "status": delegation.status,
    }


@transaction.atomic
def delegation_create(
    *,
    kommune: Organisation,
    vendor: Organisation,
    items: Sequence[DelegationItemInput],
    valid_from: datetime.date | None,
    valid_until: datetime.date | None,
    actor: User,
) -> Delegation:
    """Let the vendor's requests for these (service, access) items be approved without asking
    the kommune; the grants hold the service codes of the item that the vendor asked for."""
    if kommune.kind != Organisation.Kind.KOMMUNE:
        raise ValidationError({"kommune": _("Only a kommune delegates.")})
    if vendor.kind != Organisation.Kind.VENDOR:
        raise ValidationError({"vendor": _("Services are delegated to a vendor.")})
    if not items:
        raise ValidationError({"items": _("Delegate at least one service.")})
    _items_unique(items)
    today = timezone.localdate()
    start = valid_from or today
    if valid_until is not None and valid_until < max(start, today):
        raise ValidationError({"valid_until": _("The delegation would end before it is in force.")})
    _kommune_inputs_lock(kommune)
    delegation = Delegation(
        kommune=kommune, vendor=vendor, valid_from=start, valid_until=valid_until, created_by=actor
    )
    create_validated(delegation)
    ordered = sorted(items, key=lambda i: (i.service.position, i.access))
    delegation.ordered_items = DelegationItem.objects.bulk_create(
        DelegationItem(
            delegation=delegation,
            service=i.service,
            access=i.access,
            service_codes=list(dict.fromkeys(i.service_codes)),
        )
        for i in ordered
    )
    audit_event_record(
        actor=actor,
        action="delegation.created",
        target=delegation,
        organisation=kommune,
        after=_delegation_snapshot(delegation),
    )
    _items_reevaluate(
        AccessRequestItem.objects.filter(request__kommune=kommune, request__client__vendor=vendor),
        actor=None,
    )
    return delegation


@transaction.atomic
def delegation_revoke(*, delegation: Delegation, actor: User) -> Delegation:
    """End the delegation now and revoke the grants that rest on it."""
    # The delegation's row only: a lock on the joined kommune would wait for a decider's share
    # lock on it while that decider waits for a grant this revocation holds (a deadlock).
    delegation = (
        Delegation.objects.select_for_update(of=("self",))
        .select_related("kommune", "vendor")
        .get(pk=delegation.pk)
    )
    if delegation.revoked_at is not None:
        raise Conflict(
            _("The delegation was already revoked at %(time)s.")
            % {"time": timezone.localtime(delegation.revoked_at).strftime("%Y-%m-%d %H:%M")}
        )
    before = _delegation_snapshot(delegation)
    delegation.revoked_at = timezone.now()
    delegation.revoked_by = actor
    delegation.save(update_fields=["revoked_at", "revoked_by"])
    audit_event_record(
        actor=actor,
        action="delegation.revoked",
        target=delegation,
        organisation=delegation.kommune,
        before=before,
        after=_delegation_snapshot(delegation),
    )
    _grants_revoke(
        delegation_revoke_closes(delegation=delegation), actor=actor, code="delegation_revoked"
    )
    return delegation


def delegation_revoke_closes(*, delegation: Delegation) -> QuerySet[Grant]:
    """The grants ``delegation_revoke`` closes: the live ones resting on the delegation. The page
    previews them before the admin confirms, so the preview and the revocation never differ."""
    return Grant.objects.live().filter(delegation=delegation)


@transaction.atomic
def delegations_expire(*, today: datetime.date | None = None) -> int:
    """Revoke the grants of delegations whose last day has passed (run by a periodic task)."""
    day = today or timezone.localdate()
    expired = list(
        Delegation.objects.select_for_update(of=("self",))
        .select_related("kommune", "vendor")
        .filter(revoked_at__isnull=True, expired_at__isnull=True, valid_until__lt=day)
    )
    with audit_events_batched():
        for delegation in expired:
            delegation.expired_at = timezone.now()
            delegation.save(update_fields=["expired_at"])
            audit_event_record(
                actor=None,
                actor_label="system:delegation-expiry",
                action="delegation.expired",
                target=delegation,
                organisation=delegation.kommune,
                after=_delegation_snapshot(delegation),
            )
            _grants_revoke(
                Grant.objects.live().filter(delegation=delegation),
                actor=None,
                code="delegation_expired",
            )
    return len(expired)


# --- Clients and keys ---------------------------------------------------------------------------


def _client_snapshot(client: OAuthClient) -> dict[str, Any]:
    return {
        "name": client.name,
        "environment": client.environment,
        "product": str(client.product_id) if client.product_id else None,
        "kids": sorted(k.kid for k in client.keys.all()),
        "removed": client.removed_at is not None,
    }


def _public_keys(jwks: Any) -> list[PublicKey]:
    """The validated keys; their problems are errors of the ``jwks`` field."""
    try:
        return validate_jwks(jwks)
    except ValidationError as exc:
        raise ValidationError({"jwks": exc.messages}) from None


def _keys_store(client: OAuthClient, keys: list[PublicKey]) -> None:
    """Make the client's stored keys ``keys``. A key that stays as it was keeps its row, so the
    day it was added (which says when a key is getting old) survives a rotation."""
    kept = {
        (key.kid, json.dumps(key.jwk, sort_keys=True), key.expires_at): key.pk
        for key in ClientKey.objects.filter(client=client)
    }
    wanted = [(key, (key.kid, json.dumps(key.jwk, sort_keys=True), key.expires_at)) for key in keys]
    stay = [kept[signature] for _key, signature in wanted if signature in kept]
    ClientKey.objects.filter(client=client).exclude(pk__in=stay).delete()
    ClientKey.objects.bulk_create(
        ClientKey(
            client=client,
            kid=key.kid,
            kty=key.kty,
            alg=key.alg,
            jwk=key.jwk,
            expires_at=key.expires_at,
        )
        for key, signature in wanted
        if signature not in kept
    )


@transaction.atomic
def client_register(
    *,
    vendor: Organisation,
    product: Product | None,
    name: str,
    environment: str,
    jwks: Any,
    actor: User,
    purpose: str = OAuthClient.Purpose.FHIR,
) -> OAuthClient:
    """Register a vendor's client with its public keys and queue its registration at the
    authorization server. Only public keys are accepted (ValidationError otherwise)."""
    if purpose == OAuthClient.Purpose.FHIR:
        if vendor.kind != Organisation.Kind.VENDOR:
            raise ValidationError({"vendor": _("Only vendors register clients for the services.")})
        if product is None:
            raise ValidationError({"product": _("Name the product the client belongs to.")})
    if product is not None and product.vendor_id != vendor.pk:
        raise ValidationError({"product": _("The product belongs to another vendor.")})
    keys = _public_keys(jwks)
    client = OAuthClient(
        vendor=vendor,
        product=product,
        name=name.strip(),
        environment=environment,
        purpose=purpose,
        created_by=actor,
    )
    create_validated(client)
    _keys_store(client, keys)
    audit_event_record(
        actor=actor,
        action="client.registered",
        target=client,
        organisation=vendor,
        after=_client_snapshot(client),
    )
    provisioning_job_enqueue(client=client, reason="client.registered")
    return client


def _service_membership_snapshot(membership: Membership, client: OAuthClient) -> dict[str, Any]:
    return {
        "email": membership.email,
        "role": membership.role,
        "bound": True,
        "client": str(client.pk),
    }


def _person_manages_automation(actor: User | None, client: OAuthClient | None = None) -> None:
    """Automation clients are registered, given keys and removed by people, never by an
    automation client: one that could make another, or give itself new keys, would let a leaked
    key outlive its own removal. ``client``: the client changed (other clients are not checked)."""
    if client is not None and client.purpose != OAuthClient.Purpose.PORTAL_API:
        return
    if actor is not None and OAuthClient.objects.filter(service_user=actor).exists():
        raise PermissionDenied(
            _("An automation client cannot manage automation clients; an admin does, logged in.")
        )


@transaction.atomic
def automation_client_register(
    *, organisation: Organisation, name: str, role: str, jwks: Any, actor: User
) -> OAuthClient:
    """Register a client for the portal's own API (scope tilgang:api) that acts for the
    organisation with ``role``, never above the actor's own, by a person (not by another
    automation client). It holds the role through a service account with a membership, so
    every permission check treats it like a person."""
    _person_manages_automation(actor)
    check_role(organisation=organisation, role=role, actor=actor)
    keys = _public_keys(jwks)
    client = OAuthClient(
        vendor=organisation,
        product=None,
        name=name.strip(),
        environment=Environment.PRODUCTION,
        purpose=OAuthClient.Purpose.PORTAL_API,
        api_role=role,
        created_by=actor,
    )
    create_validated(client)
    account = get_user_model().objects.create_user(f"client:{client.pk}")
    account.set_unusable_password()
    account.save(update_fields=["password"])
    membership = Membership.objects.create(
        organisation=organisation,
        email=f"{client.pk}@clients.tilgang.invalid",
        role=role,
        user=account,
        bound_at=timezone.now(),
    )
    OAuthClient.objects.filter(pk=client.pk).update(service_user=account)
    client.service_user = account
    organisation_permissions_sync(organisation=organisation)
    audit_event_record(
        actor=actor,
        action="membership.created",
        target=membership,
        organisation=organisation,
        after=_service_membership_snapshot(membership, client),
    )
    _keys_store(client, keys)
    audit_event_record(
        actor=actor,
        action="client.registered",
        target=client,
        organisation=organisation,
        after={**_client_snapshot(client), "role": role, "purpose": client.purpose},
    )
    provisioning_job_enqueue(client=client, reason="client.registered")
    return client


@transaction.atomic
def client_jwks_rotate(*, client: OAuthClient, jwks: Any, actor: User) -> OAuthClient:
    """Replace the client's key set (at least one key stays) and push it to the server."""
    _person_manages_automation(actor, client)
    client = OAuthClient.objects.select_for_update().get(pk=client.pk)
    if not client.is_active:
        raise Conflict(_("The client was removed; its keys cannot change."))
    keys = _public_keys(jwks)
    before = _client_snapshot(client)
    _keys_store(client, keys)
    client.save(update_fields=["updated_at"])
    audit_event_record(
        actor=actor,
        action="client.keys_rotated",
        target=client,
        organisation=client.vendor,
        before=before,
        after=_client_snapshot(client),
    )
    provisioning_job_enqueue(client=client, reason="client.keys_rotated")
    return client


def _unexpired_jwks(client: OAuthClient) -> list[tuple[str, dict[str, Any]]]:
    """The client's keys that still work, as (kid, public JWK) with their ``exp`` (the stored
    JWK leaves it out): an expired key (or one past the key lifetime) would fail the whole
    set's validation, and the authorization server no longer holds it anyway."""
    now = timezone.now()
    keys = []
    for key in ClientKey.objects.filter(client=client).order_by("created_at", "kid"):
        if not key.is_valid(now):  # its own expiry or the key lifetime has passed
            continue
        jwk = dict(key.jwk)
        if key.expires_at is not None:
            jwk["exp"] = int(key.expires_at.timestamp())
        keys.append((key.kid, jwk))
    return keys


def _locked_active(client: OAuthClient) -> OAuthClient:
    client = OAuthClient.objects.select_for_update().get(pk=client.pk)
    if not client.is_active:
        raise Conflict(_("The client was removed; its keys cannot change."))
    return client


@transaction.atomic
def client_keys_add(*, client: OAuthClient, jwks: Any, actor: User) -> OAuthClient:
    """Rotation with an overlap, first step: add the keys of ``jwks`` beside the client's
    current ones, which keep working until they are removed (``client_key_remove``). Expired
    keys are left out. ValidationError (on ``jwks``) for a bad key, a kid the client already
    has, or more keys than a client may hold."""
    _person_manages_automation(actor, client)
    client = _locked_active(client)
    new = _public_keys(jwks)
    current = _unexpired_jwks(client)
    taken = sorted({kid for kid, _jwk in current} & {key.kid for key in new})
    if taken:
        raise ValidationError(
            {
                "jwks": _(
                    "The client already has a key with kid %(kids)s; give the new key a kid "
                    "of its own."
                )
                % {"kids": ", ".join(taken)}
            }
        )
    if len(current) + len(new) > MAX_KEYS:
        raise ValidationError(
            {
                "jwks": _(
                    "A client holds at most %(limit)d keys and this one has %(count)d; remove "
                    "an old key first."
                )
                % {"limit": MAX_KEYS, "count": len(current)}
            }
        )
    added = [
        {**key.jwk, **({"exp": int(key.expires_at.timestamp())} if key.expires_at else {})}
        for key in new
    ]
    merged = [jwk for _kid, jwk in current] + added
    return client_jwks_rotate(client=client, jwks={"keys": merged}, actor=actor)


@transaction.atomic
def client_key_remove(*, client: OAuthClient, kid: str, actor: User) -> OAuthClient:
    """Rotation with an overlap, last step: remove one key once the system signs with the new
    one. Never the last key that works (ValidationError on ``kid``); expired keys go with it."""
    _person_manages_automation(actor, client)
    client = _locked_active(client)
    current = _unexpired_jwks(client)
    if not ClientKey.objects.filter(client=client, kid=kid).exists():
        raise ValidationError({"kid": _("The client has no key with kid %(kid)s.") % {"kid": kid}})
    remaining = [jwk for key_kid, jwk in current if key_kid != kid]
    if not remaining:
        raise ValidationError(
            {
                "kid": _(
                    "%(kid)s is the client's last valid key and cannot be removed; add a new "
                    "key first."
                )
                % {"kid": kid}
            }
        )
    return client_jwks_rotate(client=client, jwks={"keys": remaining}, actor=actor)


KEY_EXPIRY_LOOKBACK = datetime.timedelta(days=7)


@transaction.atomic
def client_keys_age_check(*, now: datetime.datetime | None = None) -> int:
    """The daily key checks (a periodic task, hourly so a late beat catches up): tell the
    vendor's admins of each key that stops being accepted soon (``CLIENT_KEY_WARNING_DAYS``
    ahead, each warning once), and of each that has stopped (its own expiry, or the key
    lifetime after it was added), once; a key that has just stopped gets its client's job, which
    leaves it out of what the authorization server holds (the reconciler heals the same within a
    minute). Keys of removed clients are left alone. Returns how many keys were looked at."""
    now = now or timezone.now()
    day = datetime.timedelta(days=1)
    warning_days = sorted(settings.CLIENT_KEY_WARNING_DAYS)
    keys = list(
        ClientKey.objects.ending_by(now + datetime.timedelta(days=max(warning_days, default=0)))
        .exclude(pk__in=ClientKey.objects.ending_by(now - KEY_EXPIRY_LOOKBACK).values("pk"))
        .filter(client__removed_at__isnull=True)
        .select_related("client__vendor")
        .prefetch_related("client__keys")
        .order_by("client_id", "created_at", "pk")
    )
    stopped: dict[Any, OAuthClient] = {}
    with notifications_batched():
        for key in keys:
            client = key.client
            ends = key.valid_until
            common: dict[str, Any] = {
                "organisation": client.vendor,
                "roles": [Role.VENDOR_ADMIN],
                "link": "orders:client",
                "link_args": {"client_id": client.pk},
            }
            params = {"client": client.name, "kid": key.kid, "environment": client.environment}
            if ends <= now:
                last = not any(other.is_valid(now) for other in client.keys.all())
                notify(
                    kind="key_expired",
                    params={**params, "ended": timezone.localdate(ends).isoformat(), "last": last},
                    once=f"key-expired:{key.pk}",
                    **common,
                )
                if now - ends < day:
                    stopped[client.pk] = client
                continue
            days_left = (ends - now) / day
            threshold = min(d for d in warning_days if days_left <= d)
            notify(
                kind="key_expiring",
                params={
                    **params,
                    "days": math.ceil(days_left),
                    "ends": timezone.localdate(ends).isoformat(),
                },
                once=f"key-expiring:{key.pk}:{threshold}",
                **common,
            )
    for client in stopped.values():
        provisioning_job_enqueue(client=client, reason="client.key_expired")
    return len(keys)


def client_remove_closes(
    client: OAuthClient,
) -> tuple[QuerySet[Grant], QuerySet[AccessRequestItem]]:
    """What removing the client closes: its live grants (revoked) and its items that still wait
    (withdrawn). ``client_remove`` closes these, and the page's preview shows them."""
    return (
        Grant.objects.live().filter(client=client),
        AccessRequestItem.objects.filter(request__client=client, status__in=WAITING_STATUSES),
    )


@transaction.atomic
def client_remove(*, client: OAuthClient, actor: User) -> OAuthClient:
    """Remove the client: its grants are revoked, its waiting items withdrawn, its registration
    deleted at the authorization server."""
    _person_manages_automation(actor, client)
    client = OAuthClient.objects.select_for_update().select_related("vendor").get(pk=client.pk)
    if not client.is_active:
        raise Conflict(_("The client was already removed."))
    before = _client_snapshot(client)
    client.removed_at = timezone.now()
    client.save(update_fields=["removed_at", "updated_at"])
    if client.service_user_id is not None:  # an automation client's account loses its role
        memberships = Membership.objects.filter(user_id=client.service_user_id)
        for membership in memberships:
            audit_event_record(
                actor=actor,
                action="membership.removed",
                target=membership,
                organisation=client.vendor,
                before=_service_membership_snapshot(membership, client),
            )
        memberships.delete()
        get_user_model().objects.filter(pk=client.service_user_id).update(is_active=False)
        organisation_permissions_sync(organisation=client.vendor)
    grants, items = client_remove_closes(client)
    _grants_revoke(grants, actor=actor, code="client_removed")
    for item in items.select_for_update():
        _item_set(item, policy.Decision(ItemStatus.WITHDRAWN, "client_removed"), actor)
    audit_event_record(
        actor=actor,
        action="client.removed",
        target=client,
        organisation=client.vendor,
        before=before,
        after=_client_snapshot(client),
    )
    provisioning_job_enqueue(client=client, reason="client.removed")
    return client


# --- Access requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemInput:
    service: Service
    access: str
    service_codes: tuple[str, ...] = ()


def _items_unique(items: Sequence[ItemInput | DelegationItemInput]) -> None:
    seen: set[tuple[Any, str]] = set()
    for item_input in items:
        key = (item_input.service.pk, item_input.access)
        if key in seen:
            raise ValidationError(
                {
                    "items": _("%(service)s %(access)s is listed twice.")
                    % {"service": item_input.service.code, "access": item_input.access}
                }
            )
        seen.add(key)


class _PolicyInputs:
    """The instruction and delegations in force, read once per (kommune, vendor), each with the
    services it covers in one statement (through the many-to-many table, not a prefetch)."""

    def __init__(self) -> None:
        self._instructions: dict[Any, Instruction | None] = {}
        self._delegations: dict[tuple[Any, Any], dict[tuple[Any, str], DelegationItem]] = {}

    def preload(self, *, kommune_ids: Sequence[Any], vendor_id: Any) -> None:
        """Read the instructions in force of all these kommuner and the services each covers,
        and their delegations in force to the vendor with their items, in two statements each:
        an order for 357 kommuner reads what an order for one does. The same rows as
        ``instruction`` and ``delegation`` read one kommune at a time; rows come as tuples and
        each model instance is made once (thousands of rows at national scale)."""
        ids = [pk for pk in dict.fromkeys(kommune_ids) if pk not in self._instructions]
        if not ids:
            return
        newest = (
            Instruction.objects.signed()
            .filter(kommune_id=OuterRef("kommune_id"))
            .order_by("-version")
            .values("pk")[:1]
        )
        current = {
            i.pk: i for i in Instruction.objects.filter(kommune_id__in=ids, pk=Subquery(newest))
        }
        covered: dict[Any, set[Any]] = {pk: set() for pk in current}
        coverage = Instruction.services.through.objects.filter(instruction_id__in=list(current))
        for instruction_id, service_id in coverage.values_list("instruction_id", "service_id"):
            covered[instruction_id].add(service_id)
        for pk in ids:
            self._instructions[pk] = None
        for instruction in current.values():
            instruction.covered_service_ids = frozenset(covered[instruction.pk])
            self._instructions[instruction.kommune_id] = instruction

        wanted = [pk for pk in ids if (pk, vendor_id) not in self._delegations]
        by_kommune: dict[Any, dict[tuple[Any, str], DelegationItem]] = {pk: {} for pk in wanted}
        in_force = {
            d.pk: d
            for d in Delegation.objects.in_force().filter(
                kommune_id__in=wanted, vendor_id=vendor_id
            )
        }
        items = DelegationItem.objects.filter(delegation_id__in=list(in_force)).order_by(
            "delegation__created_at"
        )
        for item in items:
            item.delegation = in_force[item.delegation_id]
            by_kommune[item.delegation.kommune_id].setdefault((item.service_id, item.access), item)
        for pk, by_item in by_kommune.items():
            self._delegations[(pk, vendor_id)] = by_item

    def instruction(self, kommune: Organisation) -> Instruction | None:
        if kommune.pk not in self._instructions:
            self._instructions[kommune.pk] = Instruction.objects.current_for(kommune)
        return self._instructions[kommune.pk]

    def delegation(
        self, kommune: Organisation, vendor_id: Any, service: Service, access: str
    ) -> DelegationItem | None:
        """The item of the oldest delegation in force from the kommune to the vendor that
        covers the service with that access (a read item does not cover write)."""
        key = (kommune.pk, vendor_id)
        if key not in self._delegations:
            by_item: dict[tuple[Any, str], DelegationItem] = {}
            in_force = Delegation.objects.in_force().filter(kommune=kommune, vendor_id=vendor_id)
            coverage = (
                DelegationItem.objects.filter(delegation__in=in_force)
                .select_related("delegation")
                .order_by("delegation__created_at")
            )
            for row in coverage:
                by_item.setdefault((row.service_id, row.access), row)
            self._delegations[key] = by_item
        return self._delegations[key].get((service.pk, access))

    def context(self, item: AccessRequestItem, request: AccessRequest) -> policy.Context:
        client = request.client
        product = client.product
        system_type = product.system_type_in(client.environment) if product is not None else ""
        covering = self.delegation(request.kommune, client.vendor_id, item.service, item.access)
        kommune_codes = item.kommune_service_codes
        return policy.Context(
            service=item.service,
            access=item.access,
            # Unverified in production: the declaration, enough to refuse but never to grant.
            system_type=system_type or (product.system_type if product is not None else ""),
            product_verified=system_type is not None,
            product_name=product.name if product is not None else "",
            environment=client.environment,
            kommune=request.kommune,
            vendor_name=client.vendor.name,
            vendor_suspended=client.vendor.suspended_at is not None,
            initiated_by=request.initiated_by,
            instruction=self.instruction(request.kommune),
            delegation=covering.delegation if covering is not None else None,
            delegation_codes=tuple(covering.service_codes) if covering is not None else (),
            kommune_approved=item.kommune_approved_by_id is not None,
            kommune_codes=tuple(kommune_codes) if kommune_codes is not None else None,
            vendor_consented=item.vendor_approved_by_id is not None,
            service_codes=tuple(item.service_codes),
        )


def _grant_for(item: AccessRequestItem, decision: policy.Decision, approver: User | None) -> Grant:
    """The live grant for the item: the existing one if there is one (one grant, not two),
    holding what this latest decision says (its codes, delegation, instruction, approver)."""
    request = item.request
    try:  # at most one (a partial unique index): no ordering to compile or sort by
        live = (
            Grant.objects.live()
            .select_for_update(of=("self",))
            .get(
                client=request.client,
                kommune=request.kommune,
                service=item.service,
                access=item.access,
            )
        )
    except Grant.DoesNotExist:
        pass
    else:
        _grant_redecide(live, decision, approver)
        return live
    grant = Grant.objects.create(
        client=request.client,
        kommune=request.kommune,
        service=item.service,
        access=item.access,
        scope=item.service.scope_for(item.access),
        service_codes=list(decision.service_codes),
        instruction=decision.instruction,
        delegation=decision.delegation,
        approved_by=approver,
        approved_automatically=approver is None or decision.delegation is not None,
    )
    audit_event_record(
        actor=approver,
        actor_label=None if approver else "system:policy",
        action="grant.approved",
        target=grant,
        organisation=request.kommune,
        after=_grant_snapshot(grant),
    )
    provisioning_job_enqueue(client=request.client, reason="grant.approved", grant=grant)
    return grant


def _grant_redecide(grant: Grant, decision: policy.Decision, approver: User | None) -> None:
    """A new decision on a live grant replaces the old one: a kommune admin's narrower codes
    reach the gateway, and a grant an admin approved no longer rests on a delegation (whose
    revocation would take it away)."""
    wanted: dict[str, Any] = {
        "service_codes": list(decision.service_codes),
        "instruction_id": decision.instruction.pk if decision.instruction else None,
        "delegation_id": decision.delegation.pk if decision.delegation else None,
        "approved_by_id": approver.pk if approver else None,
        "approved_automatically": approver is None or decision.delegation is not None,
    }
    changed = [name for name, value in wanted.items() if getattr(grant, name) != value]
    if not changed:
        return
    before = _grant_snapshot(grant)
    codes_changed = "service_codes" in changed
    grant.instruction = decision.instruction
    grant.delegation = decision.delegation
    grant.approved_by = approver
    grant.service_codes = wanted["service_codes"]
    grant.approved_automatically = wanted["approved_automatically"]
    grant.save(update_fields=[name.removesuffix("_id") for name in changed])
    if grant.status == GrantStatus.ACTIVE:  # it has access on the new terms from now
        _grant_period_renew(grant, timezone.now())
    audit_event_record(
        actor=approver,
        actor_label=None if approver else "system:policy",
        action="grant.updated",
        target=grant,
        organisation=grant.kommune,
        before=before,
        after=_grant_snapshot(grant),
    )
    if codes_changed:
        # The gateway's map value holds the codes. The job records the change on the client's
        # outbox; the entry of a grant already active takes the new value at the reconciler's
        # next round, which compares values, not only keys (the job opens new grants only).
        provisioning_job_enqueue(client=grant.client, reason="grant.updated", grant=grant)


def _approver(item: AccessRequestItem, request: AccessRequest) -> User | None:
    """Who approved the item for the kommune: the admin who approved a vendor's request, or the
    kommune admin who ordered it (the vendor's consent is not the kommune's approval)."""
    if request.initiated_by == AccessRequest.Initiator.KOMMUNE:
        return request.requested_by
    return item.kommune_approved_by


def _item_set(
    item: AccessRequestItem,
    decision: policy.Decision,
    actor: User | None,
    *,
    approver: User | None = None,
) -> None:
    """Store a decision on an item, making the grant when it is approved."""
    item.status = decision.status
    item.reason_code = decision.reason_code
    item.reason_params = decision.reason_params
    item.decided_at = timezone.now()
    item.decided_by = actor
    if decision.approved:
        item.grant = _grant_for(item, decision, approver)
    if item._state.adding:
        item.save()
    else:
        item.save(
            update_fields=[
                "status",
                "reason_code",
                "reason_params",
                "decided_at",
                "decided_by",
                "grant",
                "kommune_approved_by",
                "kommune_service_codes",
                "vendor_approved_by",
            ]
        )


ITEM_PREFETCH = (
    "request__client__product",
    "request__client__vendor",
    "request__kommune",
    "request__requested_by",
)


def _items_reevaluate(items: QuerySet[AccessRequestItem], *, actor: User | None) -> int:
    """Decide waiting items again after something they waited for changed. Returns how many
    were granted."""
    inputs = _PolicyInputs()
    granted = 0
    waiting = items.filter(status__in=WAITING_STATUSES)
    # A decider like any other: an order of the same item waits for these decisions and then
    # reuses their grants (without the lock both inserted one, and the second failed).
    pairs = set(waiting.values_list("request__client_id", "request__kommune_id").distinct())
    _grant_decisions_lock(pairs)
    waiting = (
        waiting.select_for_update(of=("self",))
        .select_related("service", *ITEM_PREFETCH)
        .order_by("request__created_at", "pk")
    )
    decided: dict[Any, list[AccessRequestItem]] = {}  # by vendor
    now_waiting: dict[Any, list[AccessRequestItem]] = {}  # by request
    with audit_events_batched(), notifications_batched():
        waiting_items = list(waiting)
        # An item whose order committed between the two reads: its order has ended, so its
        # pair is free unless another decider holds it now.
        _grant_decisions_lock(
            {(i.request.client_id, i.request.kommune_id) for i in waiting_items} - pairs
        )
        for item in waiting_items:
            decision = policy.decide(inputs.context(item, item.request))
            if (decision.status, decision.reason_code, decision.reason_params) == (
                item.status,
                item.reason_code,
                item.reason_params,
            ):
                continue
            before = item.status
            _item_set(item, decision, actor, approver=_approver(item, item.request))
            granted += decision.approved
            if item.status in (ItemStatus.APPROVED, ItemStatus.REJECTED):
                decided.setdefault(item.request.client.vendor_id, []).append(item)
            elif item.status != before and item.status in (
                ItemStatus.AWAITING_KOMMUNE,
                ItemStatus.AWAITING_VENDOR,
            ):
                now_waiting.setdefault(item.request_id, []).append(item)
        for items_of_request in now_waiting.values():
            _waiting_notify(items_of_request[0].request, items_of_request)
        for items_of_vendor in decided.values():
            _reevaluated_notify(items_of_vendor)
    return granted


def _reevaluated_notify(items: Sequence[AccessRequestItem]) -> None:
    """Tell a vendor's admins which of their waiting items the rules decided by themselves (a
    service opened, a delegation or an instruction came): one notice per change, not per item."""
    approved = [i for i in items if i.status == ItemStatus.APPROVED]
    rejected = [i for i in items if i.status == ItemStatus.REJECTED]
    vendor = items[0].request.client.vendor
    notify(
        kind="items_decided",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={
            "approved": len(approved),
            "rejected": len(rejected),
            "approved_items": [_item_notified(i, kommune=True) for i in approved[:NOTIFIED_ITEMS]],
            "approved_more": max(len(approved) - NOTIFIED_ITEMS, 0),
            "rejected_items": [_item_notified(i, kommune=True) for i in rejected[:NOTIFIED_ITEMS]],
            "rejected_more": max(len(rejected) - NOTIFIED_ITEMS, 0),
        },
        link="orders:orders",
    )


def _policy_rows_share(*, product_id: Any, kommune_ids: Iterable[Any]) -> dict[Any, Organisation]:
    """Share-lock the rows whose change re-evaluates grants, and return the kommuner as read
    under the lock.

    NHN's verification, the vendor's declaration and a kommune's EPJ change lock the product or
    kommune FOR UPDATE and then re-evaluate. Under these share locks either the change waits for
    this transaction to commit and then sees its items and grants, or this transaction waits
    for the change and reads what it committed: the statements after this one take a new
    snapshot. Without them an order decided on the old type or EPJ kept a grant that the
    change's re-evaluation could not yet see. Deciders call this before reading the client's
    product or a kommune's EPJ.

    SQLite (the default of ``make run``) has no row locks, and Django's ORM has no FOR SHARE:
    there a plain read does, since its IMMEDIATE transactions already serialise every writer.
    """
    kommune_ids = list(kommune_ids)
    if connection.vendor != "postgresql":
        return {k.pk: k for k in Organisation.objects.filter(pk__in=kommune_ids)}
    organisations = Organisation._meta.db_table
    kommuner = {
        k.pk: k
        for k in Organisation.objects.raw(
            f'SELECT * FROM "{organisations}" WHERE "id" = ANY(%s) FOR SHARE',  # noqa: S608
            [kommune_ids],
        )
    }
    products = {product_id} | {
        pk for k in kommuner.values() for pk in (k.epj_product_id, k.epj_switch_product_id)
    }
    products.discard(None)
    if products:
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT 1 FROM "{Product._meta.db_table}" WHERE "id" = ANY(%s) FOR SHARE',  # noqa: S608
                [list(products)],
            )
    return kommuner


def _order_check(*, kommuner: Sequence[Organisation], items: Sequence[ItemInput]) -> None:
    """What an order must hold before the policy looks at it (ValidationError otherwise)."""
    if not items:
        raise ValidationError({"items": _("Ask for at least one service.")})
    _items_unique(items)
    if len({k.pk for k in kommuner}) != len(kommuner):
        raise ValidationError({"kommuner": _("A kommune is listed twice.")})


def _order_client_check(client: OAuthClient) -> None:
    if not client.is_active:
        raise Conflict(_("The client was removed."))
    if client.purpose != OAuthClient.Purpose.FHIR:
        raise ValidationError(
            {"client": _("This client is for the portal's API, not the services.")}
        )


def _order_inputs(
    *, client: OAuthClient, kommuner: Sequence[Organisation], items: Sequence[ItemInput]
) -> _PolicyInputs:
    """The policy's inputs of an order, read for all its kommuner at once: their instructions
    and delegations (``_PolicyInputs.preload``), their EPJ products and the services'
    availability. Reads only."""
    prefetch_related_objects(list(kommuner), "epj_product", "epj_switch_product")
    prefetch_related_objects([i.service for i in items], "availabilities")
    inputs = _PolicyInputs()
    inputs.preload(kommune_ids=[k.pk for k in kommuner], vendor_id=client.vendor_id)
    return inputs


def _order_decide(
    inputs: _PolicyInputs, request: AccessRequest, items: Sequence[ItemInput]
) -> Iterator[tuple[AccessRequestItem, policy.Decision]]:
    """Each item of an order for one kommune (unsaved, in catalogue order) with the policy's
    decision on it: the one path from an order to its decisions, for ``access_request_create``
    and its dry run ``access_request_preview``."""
    for item_input in sorted(items, key=lambda i: (i.service.position, i.access)):
        item = AccessRequestItem(
            request=request,
            service=item_input.service,
            access=item_input.access,
            service_codes=list(item_input.service_codes),
        )
        yield item, policy.decide(inputs.context(item, request))


@dataclass(frozen=True)
class ItemPreview:
    """What the policy would decide on one item of an order for one kommune."""

    kommune: Organisation
    service: Service
    access: str
    service_codes: tuple[str, ...]
    decision: policy.Decision

    @property
    def status(self) -> str:
        return self.decision.status

    @property
    def reason(self) -> str:
        """The reason in the active language ('' when approved)."""
        return policy.reason_text(self.decision.reason_code, self.decision.reason_params)


def access_request_preview(
    *,
    client: OAuthClient,
    kommuner: Sequence[Organisation],
    items: Sequence[ItemInput],
    initiated_by: str,
    actor: User,
) -> list[ItemPreview]:
    """A dry run of ``access_request_create``: per kommune (in the order given) and item (in
    catalogue order), the decision the policy would make now, through the same path
    (``_order_decide``). Writes nothing and takes no locks: no rows, audit events or jobs.
    Raises what create raises for bad input. Its statements do not grow with the kommuner."""
    _order_check(kommuner=kommuner, items=items)
    client = OAuthClient.objects.select_related("product", "vendor").get(pk=client.pk)
    _order_client_check(client)
    fresh = Organisation.objects.in_bulk([k.pk for k in kommuner])
    kommuner = [fresh[k.pk] for k in kommuner]
    inputs = _order_inputs(client=client, kommuner=kommuner, items=items)
    previews = []
    for kommune in kommuner:
        request = AccessRequest(
            client=client, kommune=kommune, initiated_by=initiated_by, requested_by=actor
        )
        previews += [
            ItemPreview(
                kommune=kommune,
                service=item.service,
                access=item.access,
                service_codes=tuple(item.service_codes),
                decision=decision,
            )
            for item, decision in _order_decide(inputs, request, items)
        ]
    return previews


def kommuner_delegating(
    *, vendor: Organisation, items: Sequence[ItemInput]
) -> QuerySet[Organisation]:
    """The kommuner with delegations in force to the vendor that cover every item (its service
    with its access), as rule 4 of the policy reads them (``_PolicyInputs.delegation``): those
    whose vendor-initiated order needs no kommune admin's approval. Their other rules still
    apply (the dry run says)."""
    kommuner = Organisation.objects.kommuner()
    if not items:
        return kommuner.none()
    in_force = Delegation.objects.in_force().filter(vendor=vendor)
    for item in items:
        covering = DelegationItem.objects.filter(
            delegation__in=in_force,
            delegation__kommune=OuterRef("pk"),
            service=item.service,
            access=item.access,
        )
        kommuner = kommuner.filter(Exists(covering))
    return kommuner


@transaction.atomic
def access_request_create(
    *,
    client: OAuthClient,
    kommuner: Sequence[Organisation],
    items: Sequence[ItemInput],
    initiated_by: str,
    actor: User,
) -> list[AccessRequest]:
    """Order access: one request per kommune, each item decided by the policy at once.

    Approved items become grants (reusing a live one for the same client, kommune, service and
    access); the others wait or are refused with their reason. Each request comes back with its
    items in ``ordered_items``, as the API shows them. ``access_request_preview`` is its dry run.
    """
    _order_check(kommuner=kommuner, items=items)
    fresh = _policy_rows_share(product_id=client.product_id, kommune_ids=[k.pk for k in kommuner])
    kommuner = [fresh[k.pk] for k in kommuner]
    # Two requests for the same item make one grant: the decisions of one client in one kommune
    # take turns (``_grant_decisions_lock``); orders for other kommuner go on beside them.
    _client_key_share(client.pk)
    _grant_decisions_lock((client.pk, k.pk) for k in kommuner)
    client = OAuthClient.objects.select_related("product", "vendor").get(pk=client.pk)
    _order_client_check(client)

    inputs = _order_inputs(client=client, kommuner=kommuner, items=items)
    created = []
    with audit_events_batched(), notifications_batched():
        for kommune in kommuner:
            request = AccessRequest.objects.create(
                client=client, kommune=kommune, initiated_by=initiated_by, requested_by=actor
            )
            request.ordered_items = []
            for item, decision in _order_decide(inputs, request, items):
                _item_set(item, decision, actor=None if decision.approved else actor)
                request.ordered_items.append(item)
            audit_event_record(
                actor=actor,
                action="access_request.created",
                target=request,
                organisation=kommune,
                after=_request_snapshot(request, request.ordered_items),
            )
            _waiting_notify(request, request.ordered_items)
            created.append(request)
    return created


def _request_snapshot(
    request: AccessRequest, items: Iterable[AccessRequestItem] | None = None
) -> dict[str, Any]:
    if items is None:
        items = request.items.select_related("service").order_by("service__position", "access")
    return {
        "client": str(request.client_id),
        "kommune": request.kommune.orgnr,
        "initiated_by": request.initiated_by,
        "items": [
            {"service": i.service.code, "access": i.access, "status": i.status} for i in items
        ],
    }


def _items_of(request: AccessRequest, item_ids: Iterable[Any] | None) -> list[AccessRequestItem]:
    items = list(
        AccessRequestItem.objects.select_for_update(of=("self",))
        .select_related("service", *ITEM_PREFETCH)
        .filter(request=request)
        .order_by("service__position", "access")
    )
    if item_ids is None:
        return items
    wanted = {str(i) for i in item_ids}
    chosen = [item for item in items if str(item.pk) in wanted]
    if len(chosen) != len(wanted):
        raise ValidationError({"items": _("Some items are not part of this request.")})
    return chosen


def _client_key_share(client_id: Any) -> None:
    """Lock the client's row FOR KEY SHARE until COMMIT: its removal (FOR UPDATE) waits for
    this transaction, or this one waits for the removal and then reads the client removed.
    Orders of the same client do not wait for each other here, nor for a worker's claim (FOR
    NO KEY UPDATE). SQLite has no row locks (its writers take turns anyway)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT 1 FROM "{OAuthClient._meta.db_table}" WHERE "id" = %s FOR KEY SHARE',  # noqa: S608
            [client_id],
        )


def _grant_decisions_lock(pairs: Iterable[tuple[Any, Any]]) -> None:
    """Serialise the grant decisions of each (client, kommune) until COMMIT: two deciders of
    the same item (two orders, an order and an approval) make one grant, the second reusing
    the first's. A transaction-scoped advisory lock per pair, taken in one statement in the
    order of their keys, so that two deciders of many pairs never wait for each other in a
    cycle. Every decider takes it after the policy's share locks and the client's row lock, and
    before it locks any item, grant or job (``_decider_locks``).

    Re-deciding waiting items after one of the policy's inputs changed takes it too
    (``_items_reevaluate``), before any audit event of its transaction is written: the audit
    chain's lock, which an order takes last, must not be held while waiting for this one.

    It used to be the client's row (FOR NO KEY UPDATE) for the whole order: 20 orders of one
    client for 20 kommuner then took turns, the last waiting about 1.5 s (issue 14)."""
    if connection.vendor != "postgresql":
        return
    keys = sorted({lock_key(f"grant-decisions:{client}:{kommune}") for client, kommune in pairs})
    if not keys:
        return
    with connection.cursor() as cursor:
        # The function scan yields the array's elements in its (sorted) order.
        cursor.execute("SELECT pg_advisory_xact_lock(key) FROM unnest(%s::bigint[]) AS key", [keys])


def _decider_locks(request: AccessRequest) -> None:
    """Take the policy's share locks, then the client's lock, then the item's decisions
    (``_grant_decisions_lock``), in the order ``access_request_create`` takes them. The other
    way round deadlocked with a product or EPJ change, which locks the product or kommune and
    then (queueing a job for the client) waits for a key-share lock on the client.

    The client's lock is FOR NO KEY UPDATE: it serialises the approvals and consents of one
    client, yet lets a revocation that holds a grant this decision reuses insert its job (whose
    foreign key takes KEY SHARE on the client) and commit; FOR UPDATE made the two wait for
    each other. Orders take KEY SHARE on the client (they do not wait for this); an order of
    the same item waits for the decisions lock."""
    product_id = (
        OAuthClient.objects.filter(pk=request.client_id)
        .values_list("product_id", flat=True)
        .first()
    )  # a client's product never changes, so reading it unlocked is safe
    _policy_rows_share(product_id=product_id, kommune_ids=[request.kommune_id])
    OAuthClient.objects.select_for_update(no_key=True).filter(pk=request.client_id).first()
    _grant_decisions_lock([(request.client_id, request.kommune_id)])


@transaction.atomic
def access_request_approve(
    *,
    request: AccessRequest,
    actor: User,
    item_ids: Iterable[Any] | None = None,
    service_codes: Mapping[str, Sequence[str]] | None = None,
) -> AccessRequest:
    """A kommune admin approves items that wait for the kommune (all of them by default).

    Approving an item that no longer waits is a Conflict, except that approving an approved item
    again changes nothing. An item that still lacks a signed instruction cannot be approved.
    ``service_codes`` (by item id) narrows the codes an item's grant holds to those the kommune
    allows; an item left out keeps the codes it asked for, which the admin saw and approved.
    """
    _decider_locks(request)
    items = _items_of(request, item_ids)
    todo = [i for i in items if i.status == ItemStatus.AWAITING_KOMMUNE]
    if item_ids is not None:
        stuck = [
            i for i in items if i.status not in (ItemStatus.AWAITING_KOMMUNE, ItemStatus.APPROVED)
        ]
        if stuck:
            raise Conflict(
                _("These items do not wait for the kommune: %(items)s.")
                % {"items": ", ".join(f"{i.service.code} {i.access} ({i.status})" for i in stuck)}
            )
    codes = {str(k): list(v) for k, v in (service_codes or {}).items()}
    known = {str(i.pk): i for i in items}
    for item_id, allowed in codes.items():
        item = known.get(item_id)
        if item is None:
            raise ValidationError({"service_codes": _("Some items are not part of this request.")})
        extra = [c for c in allowed if c not in item.service_codes]
        if extra:
            raise ValidationError(
                {
                    "service_codes": _("%(service)s %(access)s did not ask for %(codes)s.")
                    % {
                        "service": item.service.code,
                        "access": item.access,
                        "codes": ", ".join(extra),
                    }
                }
            )
    inputs = _PolicyInputs()
    for item in todo:
        item.kommune_approved_by = actor
        item.kommune_service_codes = codes.get(str(item.pk), list(item.service_codes))
        decision = policy.decide(inputs.context(item, item.request))
        if decision.reason_code == "instruction_missing":
            raise Conflict(policy.reason_text(decision.reason_code, decision.reason_params))
        _item_set(item, decision, actor, approver=actor)
    if todo:
        audit_event_record(
            actor=actor,
            action="access_request.approved",
            target=request,
            organisation=request.kommune,
            after=_request_snapshot(request),
        )
        _decided_notify(todo[0].request, todo, person=_person(actor))
    return request


@transaction.atomic
def access_request_consent(
    *, request: AccessRequest, actor: User, item_ids: Iterable[Any] | None = None
) -> AccessRequest:
    """An admin of the client's vendor consents to the kommune's order (items that wait for
    the vendor; all of them by default); the items then go on through the rest of the policy."""
    _decider_locks(request)
    items = _items_of(request, item_ids)
    todo = [i for i in items if i.status == ItemStatus.AWAITING_VENDOR]
    if item_ids is not None and len(todo) != len(items):
        raise Conflict(_("Only items that wait for the vendor can be consented to."))
    inputs = _PolicyInputs()
    for item in todo:
        item.vendor_approved_by = actor
        decision = policy.decide(inputs.context(item, item.request))
        _item_set(item, decision, actor, approver=_approver(item, request))
    if todo:
        audit_event_record(
            actor=actor,
            action="access_request.vendor_consented",
            target=request,
            organisation=request.kommune,
            after=_request_snapshot(request),
        )
    return request


def _items_close(
    *,
    request: AccessRequest,
    actor: User,
    item_ids: Iterable[Any] | None,
    decision: policy.Decision,
    action: str,
    refusal: str,
    reason: str | None = None,
) -> AccessRequest:
    """Give the items that still wait a final decision (rejected or withdrawn); a rejection
    (``reason`` given, maybe empty) is told to the vendor's admins."""
    items = _items_of(request, item_ids)
    todo = [i for i in items if i.status in WAITING_STATUSES]
    if item_ids is not None and len(todo) != len(items):
        raise Conflict(refusal)
    for item in todo:
        _item_set(item, decision, actor)
    if todo:
        audit_event_record(
            actor=actor,
            action=action,
            target=request,
            organisation=request.kommune,
            after=_request_snapshot(request),
        )
        if reason is not None:
            _decided_notify(todo[0].request, todo, person=_person(actor), reason=reason)
    return request


@transaction.atomic
def access_request_reject(
    *,
    request: AccessRequest,
    actor: User,
    item_ids: Iterable[Any] | None = None,
    reason: str = "",
) -> AccessRequest:
    """A kommune admin refuses items that still wait, with ``reason`` (their own words, kept as
    written and shown to the vendor with the decision) when given."""
    params = {"person": _person(actor), "kommune": request.kommune.name}
    code = "rejected_by_kommune"
    if reason.strip():
        code = "rejected_by_kommune_because"
        params["reason"] = reason.strip()[:300]
    return _items_close(
        request=request,
        actor=actor,
        item_ids=item_ids,
        decision=policy.Decision(ItemStatus.REJECTED, code, params),
        action="access_request.rejected",
        refusal=_("Only items that still wait can be rejected."),
        reason=reason.strip()[:300],
    )


@transaction.atomic
def access_request_withdraw(
    *, request: AccessRequest, actor: User, item_ids: Iterable[Any] | None = None
) -> AccessRequest:
    """The requester takes back items that still wait. Granted items are revoked, not withdrawn."""
    return _items_close(
        request=request,
        actor=actor,
        item_ids=item_ids,
        decision=policy.Decision(ItemStatus.WITHDRAWN, "withdrawn", {"person": _person(actor)}),
        action="access_request.withdrawn",
        refusal=_("Only items that still wait can be withdrawn; revoke a grant instead."),
    )


@transaction.atomic
def items_release_available() -> int:
    """Grant items that waited for a service to open, now that it has (a periodic task)."""
    return _items_reevaluate(
        AccessRequestItem.objects.filter(status=ItemStatus.AWAITING_AVAILABILITY), actor=None
    )


@dataclass(frozen=True)
class AvailabilityChange:
    """What setting a service's opening day did: the items it granted at once (``released``)
    and the orders that still wait for the service to open in that environment."""

    service: Service
    environment: str
    available_from: datetime.date | None
    released: int
    waiting_orders: int


@transaction.atomic
def service_availability_set(
    *,
    service: Service,
    environment: str,
    available_from: datetime.date | None,
    actor: User | None,
) -> AvailabilityChange:
    """NHN sets the day ``service`` opens in ``environment``, or clears it (None: not planned).

    The items waiting for it are decided again at once: granted if the day has come, otherwise
    they keep waiting with the new day in their reason, and ``items_release_available`` (a
    periodic task) grants them on that day. Availability never takes a grant away, so moving
    the day later leaves live grants as they are. ValidationError for an unknown environment.
    """
    if environment not in Environment.values:
        raise ValidationError(
            {"environment": _("%(value)s is not an environment.") % {"value": environment}}
        )
    # The service row serialises two changes of its availability (and the re-decisions they
    # make): the second reads the first's day, so the audit trail's before and after chain up.
    service = Service.objects.select_for_update(no_key=True).get(pk=service.pk)
    current = ServiceAvailability.objects.filter(service=service, environment=environment).first()
    before = current.available_from if current is not None else None
    if available_from is None:
        ServiceAvailability.objects.filter(service=service, environment=environment).delete()
    elif current is None:
        ServiceAvailability.objects.create(
            service=service, environment=environment, available_from=available_from
        )
    elif current.available_from != available_from:
        current.available_from = available_from
        current.save(update_fields=["available_from"])
    # The events are written when the re-decisions are done, after their decisions' locks: the
    # audit chain's lock is the last a transaction takes (an order in flight holds its
    # decisions' lock and then waits for the chain's; the other way round the two deadlocked).
    with audit_events_batched():
        if before != available_from:
            audit_event_record(
                actor=actor,
                action="service.availability_set",
                target=service,
                before={
                    "service": service.code,
                    "environment": environment,
                    "available_from": before.isoformat() if before else None,
                },
                after={
                    "service": service.code,
                    "environment": environment,
                    "available_from": available_from.isoformat() if available_from else None,
                },
            )
        waiting = AccessRequestItem.objects.filter(
            status=ItemStatus.AWAITING_AVAILABILITY,
            service=service,
            request__client__environment=environment,
        )
        # The policy decides (as the periodic release does), not the operator: actor None.
        released = _items_reevaluate(waiting, actor=None)
    return AvailabilityChange(
        service=service,
        environment=environment,
        available_from=available_from,
        released=released,
        waiting_orders=waiting.values("request_id").distinct().count(),
    )


# --- Grants -------------------------------------------------------------------------------------

#: What a grant's periods copy from it: who it is for, and the terms it rests on.
_PERIOD_FIELDS = (
    "pk",
    "kommune_id",
    "client_id",
    "client__vendor_id",
    "service_id",
    "access",
    "scope",
    "service_codes",
    "instruction_id",
    "delegation_id",
    "approved_by_id",
    "approved_automatically",
)


def grant_periods_open(*, grants: Iterable[Grant], at: datetime.datetime) -> list[GrantPeriod]:
    """Record that these grants have access from ``at``: they just became active. Call it in
    the transaction that made them active; their terms are read from the database there, so a
    new decision committed just before is the one recorded. A grant whose period is open keeps
    it (repeating the call changes nothing). Returns the periods opened."""
    ids = [grant.pk for grant in grants]
    if not ids:
        return []
    already = set(
        GrantPeriod.objects.filter(grant_id__in=ids, ended_at__isnull=True).values_list(
            "grant_id", flat=True
        )
    )
    periods = [
        GrantPeriod(
            grant_id=row["pk"],
            kommune_id=row["kommune_id"],
            vendor_id=row["client__vendor_id"],
            client_id=row["client_id"],
            service_id=row["service_id"],
            access=row["access"],
            scope=row["scope"],
            service_codes=row["service_codes"],
            instruction_id=row["instruction_id"],
            delegation_id=row["delegation_id"],
            approved_by_id=row["approved_by_id"],
            approved_automatically=row["approved_automatically"],
            started_at=at,
        )
        for row in Grant.objects.filter(pk__in=ids).order_by().values(*_PERIOD_FIELDS)
        if row["pk"] not in already
    ]
    return GrantPeriod.objects.bulk_create(periods)


def grant_periods_close(
    *, grant_ids: Iterable[Any], at: datetime.datetime, end: GrantPeriod.End
) -> int:
    """Record that these grants no longer have access from ``at`` (half-open: at ``at`` they
    have none), in the transaction that took it away. Grants without an open period (never
    active, or closed already) are left alone. Returns how many periods were closed.

    A period never ends before it started: a revocation that read the clock before waiting for
    the lock of a grant a worker was activating ends it at its start (an empty period)."""
    ids = list(grant_ids)
    if not ids:
        return 0
    return GrantPeriod.objects.filter(grant_id__in=ids, ended_at__isnull=True).update(
        ended_at=Greatest(Value(at, output_field=DateTimeField()), F("started_at")), end=end
    )


def _grant_period_renew(grant: Grant, at: datetime.datetime) -> None:
    """A new decision on an active grant: its period ends and the next one, on the new terms,
    starts at the same moment (adjacent half-open intervals: at ``at`` only the new one holds)."""
    current = GrantPeriod.objects.filter(grant=grant, ended_at__isnull=True).first()
    if current is None:
        return
    at = max(at, current.started_at)
    grant_periods_close(grant_ids=[grant.pk], at=at, end=GrantPeriod.End.TERMS_CHANGED)
    grant_periods_open(grants=[grant], at=at)


def _grant_snapshot(grant: Grant) -> dict[str, Any]:
    return {
        "client": str(grant.client_id),
        "kommune": grant.kommune.orgnr,
        "service": grant.service.code,
        "access": grant.access,
        "scope": grant.scope,
        "status": grant.status,
        "instruction_version": grant.instruction.version if grant.instruction else None,
        "delegation": str(grant.delegation_id) if grant.delegation_id else None,
        "service_codes": grant.service_codes,
        "revoke_reason": grant.revoke_reason,
        "revoke_reason_code": grant.revoke_reason_code,
        "revoke_reason_params": grant.revoke_reason_params,
    }


def _grants_revoke(
    grants: QuerySet[Grant],
    *,
    actor: User | None,
    reason: str = "",
    code: str = "",
    params: dict[str, Any] | None = None,
) -> list[Grant]:
    """Move live grants to `revoking`, close them at the gateway at once (a task of its own after
    COMMIT) and queue one job per client, which narrows the scope at the authorization server
    (and closes them at the gateway too, in case the first task was lost). Returns them.

    The reason is a code of ``policy.GRANT_REASONS`` with its parameters, worded when read; or
    ``reason``, a person's own words, kept as written."""
    now = timezone.now()
    clients: dict[Any, OAuthClient] = {}
    revoked = []
    locked = grants.select_for_update(of=("self",)).select_related(
        "client", "kommune", "service", "instruction", "approved_by"
    )
    with audit_events_batched():
        for grant in locked:
            before = _grant_snapshot(grant)
            grant.status = GrantStatus.REVOKING
            grant.status_changed_at = now
            grant.revoked_at = now
            grant.revoked_by = actor
            grant.revoke_reason = reason[:300]
            grant.revoke_reason_code = code
            grant.revoke_reason_params = params or {}
            grant.save(
                update_fields=[
                    "status",
                    "status_changed_at",
                    "revoked_at",
                    "revoked_by",
                    "revoke_reason",
                    "revoke_reason_code",
                    "revoke_reason_params",
                ]
            )
            audit_event_record(
                actor=actor,
                actor_label=None if actor else "system:revocation",
                action="grant.revoked",
                target=grant,
                organisation=grant.kommune,
                before=before,
                after=_grant_snapshot(grant),
            )
            clients[grant.client_id] = grant.client
            revoked.append(grant)
    # Those that were active had access until now.
    grant_periods_close(
        grant_ids=[grant.pk for grant in revoked], at=now, end=GrantPeriod.End.REVOKED
    )
    if revoked:  # sent first: the close must not queue behind a job waiting for the server
        gateway_close_send_on_commit(grant_ids=[grant.pk for grant in revoked])
    for client in clients.values():
        provisioning_job_enqueue(client=client, reason="grant.revoked")
    return revoked


@transaction.atomic
def grant_revoke(*, grant: Grant, actor: User, reason: str = "") -> Grant:
    """Revoke one grant (a kommune admin of its kommune, or an NHN operator); Conflict if it
    already is."""
    revoked = _grants_revoke(
        Grant.objects.live().filter(pk=grant.pk),
        actor=actor,
        reason=reason,
        code="" if reason else "revoked_by",
        params=None if reason else {"person": _person(actor)},
    )
    if revoked:
        return revoked[0]
    current = Grant.objects.get(pk=grant.pk)
    raise Conflict(
        _("The grant was already revoked at %(time)s.")
        % {
            "time": timezone.localtime(current.revoked_at or timezone.now()).strftime(
                "%Y-%m-%d %H:%M"
            )
        }
    )


def grants_revoke(
    grants: QuerySet[Grant], *, actor: User | None, code: str, params: dict[str, Any]
) -> list[Grant]:
    """Revoke the live grants among ``grants`` for the reason ``code`` (of
    ``policy.GRANT_REASONS``), in the caller's transaction: the one revocation path (audit
    events, the gateway closed after COMMIT, a job per client) for the apps above this one
    (recertification). Returns those it revoked; grants no longer live are left alone."""
    return _grants_revoke(
        grants.filter(status__in=LIVE_GRANT_STATUSES), actor=actor, code=code, params=params
    )


# --- Changes of a product's type or a kommune's EPJ ---------------------------------------------


def policy_inputs_reevaluate(change: PolicyInputsChanged) -> None:
    """Receiver of ``tenants.hooks``: after a product's type (declared or verified) or a
    kommune's EPJ changed, in the same transaction, revoke the live grants rules 1 and 2 no
    longer allow (through provisioning, with the reason) and decide the waiting items again."""
    if change.products:
        product_ids = [p.pk for p in change.products]
        # The product's own clients, and kommuner whose EPJ (now or planned) it is.
        epj_of = Q(kommune__epj_product__in=product_ids) | Q(
            kommune__epj_switch_product__in=product_ids
        )
        grants = Grant.objects.live().filter(
            Q(client__product__in=product_ids)
            | (epj_of & Q(service__epj_requirement=Service.EpjRequirement.EPIC))
        )
        items = AccessRequestItem.objects.filter(
            Q(request__client__product__in=product_ids)
            | Q(request__kommune__epj_product__in=product_ids)
            | Q(request__kommune__epj_switch_product__in=product_ids)
        )
    elif change.kommune is not None:
        grants = Grant.objects.live().filter(
            kommune=change.kommune, service__epj_requirement=Service.EpjRequirement.EPIC
        )
        items = AccessRequestItem.objects.filter(request__kommune=change.kommune)
    else:
        return
    if change.environment is not None:
        grants = grants.filter(client__environment=change.environment)
    grants_reevaluate(grants, actor=change.actor)
    _items_reevaluate(items, actor=None)


def grants_reevaluate(grants: QuerySet[Grant], *, actor: User | None) -> list[Grant]:
    """Revoke the live grants among ``grants`` that the policy's rules 1 and 2 no longer allow,
    each with its own reason. Returns those revoked."""
    objections: dict[str, tuple[str, dict[str, Any], list[Any]]] = {}
    candidates = grants.select_related(
        "service",
        "client__product",
        "kommune__epj_product",
        "kommune__epj_switch_product",
    ).order_by("pk")
    for grant in candidates:
        code, params = policy.grant_objection(
            service=grant.service,
            access=grant.access,
            product=grant.client.product,
            environment=grant.client.environment,
            kommune=grant.kommune,
        )
        if code:
            key = json.dumps([code, params], sort_keys=True)
            objections.setdefault(key, (code, params, []))[2].append(grant.pk)
    revoked = []
    for code, params, ids in objections.values():
        revoked += _grants_revoke(
            Grant.objects.live().filter(pk__in=ids), actor=actor, code=code, params=params
        )
    return revoked


# --- Suspending a vendor ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientAffected:
    client: OAuthClient
    grants: int


@dataclass(frozen=True)
class KommuneAffected:
    kommune: Organisation
    grants: int


@dataclass(frozen=True)
class SuspensionPreview:
    """What suspending the vendor would close now: its clients with live grants, the kommuner
    they hold them in, and how many grants in all."""

    clients: list[ClientAffected]
    kommuner: list[KommuneAffected]
    grants: int


def vendor_suspension_preview(*, vendor: Organisation) -> SuspensionPreview:
    """The dry run of ``vendor_suspend``: the live grants it would close, by client and by
    kommune (three queries, however many grants)."""
    grants = Grant.objects.live().filter(client__vendor=vendor).order_by()
    by_client = dict(
        grants.values_list("client_id").annotate(n=Count("pk")).values_list("client_id", "n")
    )
    by_kommune = dict(
        grants.values_list("kommune_id").annotate(n=Count("pk")).values_list("kommune_id", "n")
    )
    clients = OAuthClient.objects.filter(pk__in=by_client).order_by("name", "created_at")
    kommuner = Organisation.objects.filter(pk__in=by_kommune).order_by("name")
    return SuspensionPreview(
        clients=[ClientAffected(client, by_client[client.pk]) for client in clients],
        kommuner=[KommuneAffected(kommune, by_kommune[kommune.pk]) for kommune in kommuner],
        grants=sum(by_client.values()),
    )


def _vendor_lock(vendor: Organisation) -> Organisation:
    """Lock the vendor, then its products, as the deciders' share locks on a product expect
    (``_policy_rows_share``): an order deciding for one of its clients either commits before
    this change (whose queries then see its grants) or waits for it and reads the vendor's new
    state. FOR NO KEY UPDATE: rows that merely refer to the vendor or a product (a new client,
    a job) need not wait."""
    if vendor.kind != Organisation.Kind.VENDOR:
        raise ValidationError({"vendor": _("Only a vendor can be suspended.")})
    locked = Organisation.objects.select_for_update(no_key=True).get(pk=vendor.pk)
    list(
        Product.objects.select_for_update(no_key=True)
        .filter(vendor=locked)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return locked


def _suspension_snapshot(suspension: Suspension) -> dict[str, Any]:
    return {"suspended": True, "suspension": str(suspension.pk), "reason": suspension.reason}


@transaction.atomic
def vendor_suspend(*, vendor: Organisation, actor: User, reason: str) -> Suspension:
    """NHN suspends a vendor: every live grant of its clients is revoked through provisioning
    (closed at the gateway at once, narrowed at the authorization server by each client's job),
    and the policy refuses its clients anything new until the suspension is lifted. Idempotent:
    a vendor already suspended keeps its suspension, which is returned unchanged."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the vendor is suspended.")})
    max_length = Suspension._meta.get_field("reason").max_length or 0
    if len(reason) > max_length:
        raise ValidationError(
            {"reason": _("Say it in at most %(max)s characters.") % {"max": max_length}}
        )
    vendor = _vendor_lock(vendor)
    current = Suspension.objects.filter(vendor=vendor, lifted_at__isnull=True).first()
    if current is not None:
        return current
    now = timezone.now()
    suspension = Suspension.objects.create(
        vendor=vendor, reason=reason, suspended_at=now, suspended_by=actor
    )
    vendor.suspended_at = now
    vendor.save(update_fields=["suspended_at", "updated_at"])
    closed = _grants_revoke(
        Grant.objects.live().filter(client__vendor=vendor),
        actor=actor,
        code="vendor_suspended",
        params={"vendor": vendor.name, "reason": reason},
    )
    SuspendedGrant.objects.bulk_create(
        SuspendedGrant(suspension=suspension, grant=grant) for grant in closed
    )
    notify(
        kind="vendor_suspended",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={"vendor": vendor.name, "reason": reason, "grants": len(closed)},
        link="orders:dashboard",
    )
    audit_event_record(
        actor=actor,
        action="vendor.suspended",
        target=vendor,
        organisation=vendor,
        before={"suspended": False},
        after={
            **_suspension_snapshot(suspension),
            "grants_closed": len(closed),
            "clients": sorted({str(grant.client_id) for grant in closed}),
            "kommuner": sorted({grant.kommune.orgnr for grant in closed}),
        },
    )
    return suspension


@transaction.atomic
def vendor_suspension_lift(*, vendor: Organisation, actor: User) -> Suspension | None:
    """NHN lifts a vendor's suspension: its clients may be granted access again, and each grant
    the suspension closed is decided again by the policy (on its order's terms, with today's
    instruction, delegation, catalogue and EPJ) and, where granted, provisioned again as a new
    grant. Grants revoked for other reasons stay revoked. Returns the suspension lifted, or
    None when the vendor was not suspended (nothing changes)."""
    vendor = _vendor_lock(vendor)
    suspension = (
        Suspension.objects.select_for_update().filter(vendor=vendor, lifted_at__isnull=True).first()
    )
    if suspension is None:
        return None
    before = _suspension_snapshot(suspension)
    suspension.lifted_at = timezone.now()
    suspension.lifted_by = actor
    suspension.save(update_fields=["lifted_at", "lifted_by"])
    vendor.suspended_at = None
    vendor.save(update_fields=["suspended_at", "updated_at"])
    restored, refused = _suspended_grants_restore(suspension, actor=actor)
    notify(
        kind="vendor_suspension_lifted",
        organisation=vendor,
        roles=[Role.VENDOR_ADMIN],
        params={"vendor": vendor.name, "restored": restored, "not_restored": refused},
        link="orders:dashboard",
    )
    audit_event_record(
        actor=actor,
        action="vendor.suspension_lifted",
        target=vendor,
        organisation=vendor,
        before=before,
        after={
            "suspended": False,
            "suspension": str(suspension.pk),
            "grants_restored": restored,
            "grants_not_restored": refused,
        },
    )
    return suspension


def _suspended_grants_restore(suspension: Suspension, *, actor: User) -> tuple[int, int]:
    """Decide each grant the suspension closed again, as its order's item (or, for a grant no
    item made, on the grant's own terms), and grant it anew where the policy says so; each row
    records the grant that restores it or why none does. Returns (restored, not restored)."""
    rows = list(
        SuspendedGrant.objects.filter(suspension=suspension)
        .select_related("grant__approved_by")
        .order_by("grant__created_at", "grant_id")
    )
    if not rows:
        return 0, 0
    old_ids = [row.grant_id for row in rows]
    kommune_ids = {row.grant.kommune_id for row in rows}
    client_ids = sorted({row.grant.client_id for row in rows})
    # The locks a decider takes, in its order: the policy's rows shared, then each client.
    _policy_rows_share(product_id=None, kommune_ids=kommune_ids)
    clients = {
        client.pk: client
        for client in OAuthClient.objects.select_for_update(of=("self",), no_key=True)
        .select_related("product", "vendor")
        .filter(pk__in=client_ids)
        .order_by("pk")
    }
    _grant_decisions_lock({(row.grant.client_id, row.grant.kommune_id) for row in rows})
    # Everything the policy reads, loaded once: the kommuner with their EPJs (read under the
    # share locks above), the services with their opening dates.
    kommuner = Organisation.objects.select_related("epj_product", "epj_switch_product").in_bulk(
        kommune_ids
    )
    services_by_id = Service.objects.with_availability().in_bulk(
        {row.grant.service_id for row in rows}
    )
    # The items that made each grant (one item may reuse another's grant); the newest decides.
    items = list(
        AccessRequestItem.objects.filter(grant_id__in=old_ids)
        .select_related("request__requested_by", "kommune_approved_by")
        .order_by("request__created_at", "pk")
    )
    made_by = {item.grant_id: item for item in items}
    restoring: dict[Any, Grant] = {}
    inputs = _PolicyInputs()
    restored = refused = 0
    with audit_events_batched():
        for row in rows:
            old = row.grant
            client = clients[old.client_id]
            if not client.is_active:
                row.not_restored_code, row.not_restored_params = "client_removed", {}
            else:
                item = made_by.get(old.pk) or _item_on_grant_terms(old)
                # What the policy reads, as loaded above (not the item's own, stale, copies).
                item.service = services_by_id[old.service_id]
                item.request.client = client
                item.request.kommune = kommuner[old.kommune_id]
                decision = policy.decide(inputs.context(item, item.request))
                if decision.approved:
                    grant = _grant_for(item, decision, _approver(item, item.request))
                    row.restored_grant = restoring[old.pk] = grant
                    audit_event_record(
                        actor=actor,
                        action="grant.restored",
                        target=grant,
                        organisation=grant.kommune,
                        before={"grant": str(old.pk), "status": old.status},
                        after={"suspension": str(suspension.pk), **_grant_snapshot(grant)},
                    )
                else:
                    row.not_restored_code = decision.reason_code
                    row.not_restored_params = decision.reason_params
            restored += row.restored_grant_id is not None
            refused += row.restored_grant_id is None
    SuspendedGrant.objects.bulk_update(
        rows, ["restored_grant", "not_restored_code", "not_restored_params"], batch_size=1000
    )
    # The orders' items name the grant that restores theirs (their decision stands).
    renamed = []
    for item in items:
        if (restorer := restoring.get(item.grant_id)) is not None:
            item.grant = restorer
            renamed.append(item)
    AccessRequestItem.objects.bulk_update(renamed, ["grant"], batch_size=1000)
    return restored, refused


def _item_on_grant_terms(grant: Grant) -> AccessRequestItem:
    """An item (never saved) asking again for what a grant no order made held: the vendor asks
    for its service codes, approved by the kommune admin who approved it, if a person did."""
    approver = None if grant.approved_automatically else grant.approved_by
    return AccessRequestItem(
        # Its client, kommune and service are set by the caller, as it loaded them.
        request=AccessRequest(initiated_by=AccessRequest.Initiator.VENDOR),
        access=grant.access,
        service_codes=list(grant.service_codes),
        kommune_approved_by=approver,
        kommune_service_codes=list(grant.service_codes) if approver is not None else None,
    )
