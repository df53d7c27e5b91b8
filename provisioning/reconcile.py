"""The reconciler: compare the desired state in the database with the authorization server's
registrations and each gateway's maps and keys, heal every difference, and record each heal as an
audit event. Run by beat, by `manage.py reconcile`, and after a gateway restart.

What the database does not know goes: map entries without a passing grant, and registrations
the portal made that no client of the database holds (after a restore of an older backup, the
clients made since). The server and the gateways converge on exactly the database's state.

Beat runs the gateways' part every 10 s (``reconcile_gateways``: a ``show map`` of each gateway
compared with one read of the database, cheap at any size) and the whole every minute (the
registrations are one HTTP read each). A gateway that was down, or did not answer a change, is
back in line within 10 s of answering again, plus the run itself: inside the 30 s a returning
gateway has to converge. Each gateway is compared and healed on its own; one that does not answer
is an error of the run, never a reason to skip the others.

One run at a time (two beats on two machines send the same tasks): the whole under the lock
``reconcile``, the gateways' part under ``reconcile-gateways`` (``portal.locks``), so each heal is
done once and audited once however many runs start together."""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_event_record
from notifications.models import Notice
from notifications.services import notify
from orders.models import Grant, GrantStatus, Service
from orders.services import in_each_language
from portal.locks import lock_try
from provisioning.authserver import (
    AuthServerClient,
    AuthServerRejected,
    AuthServerUnavailable,
    PortalRegistration,
    RegistrationGone,
)
from provisioning.gateway import (
    Entry,
    GatewayError,
    GatewayUnavailable,
    HAProxyGateway,
    Scopes,
    SigningKey,
    signing_keys_from_jwks,
)
from provisioning.models import ClientRegistration
from provisioning.runner import gateway, job_run_now
from tenants.forms.audit import action_label
from tenants.models import OAuthClient, Role

logger = logging.getLogger(__name__)
ACTOR = "system:reconciler"
#: The audit actions of its heals, one for each kind of drift it repairs: what
#: ``provisioning.metrics`` counts as tilgang_reconciler_heals_total.
HEAL_ACTIONS = (
    "reconcile.gateway_keys",
    "reconcile.gateway_resources",
    "reconcile.gateway_reopened",
    "reconcile.gateway_grants",
    "reconcile.registration",
    "reconcile.registration_unknown",
)


@dataclass
class Report:
    heals: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    clients_checked: int = 0
    entries: int = 0
    skipped: bool = False  # another reconciler was running

    def counts(self) -> dict[str, int]:
        return {
            "heals": len(self.heals),
            "errors": len(self.errors),
            "clients_checked": self.clients_checked,
            "entries": self.entries,
            "skipped": int(self.skipped),
        }


def desired_entries() -> list[Entry]:
    """Every grant that should pass the gateway: the active ones, whose scope the authorization
    server accepted (a worker activates a grant before it opens it, so a full sync never undoes
    a worker's fresh entry). Read as tuples: at 30,000 grants, model instances with four
    related ones each took 2 s of the reconcile, tuples 0.3 s."""
    rows = (
        Grant.objects.passing()
        .filter(
            client__removed_at__isnull=True,
            client__registration__isnull=False,
        )
        .values_list(
            "client__environment",
            "client__registration__server_client_id",
            "kommune__orgnr",
            "service__code",
            "access",
            "service_codes",
        )
    )
    return [Entry(*row) for row in rows.iterator(chunk_size=5000)]


def resource_map() -> dict[str, str]:
    return {service.resource_type: service.code for service in Service.objects.all()}


def scope_map() -> Scopes:
    """The catalogue's scopes, which the gateway's configuration checks tokens against."""
    return {
        code: (read, write)
        for code, read, write in Service.objects.values_list("code", "read_scope", "write_scope")
    }


def gateway_files_write() -> bool:
    """Rewrite each gateway's map files (what a reload or a restart reads), only where they
    differ from the desired state: a gateway that is down starts again from them. One whose
    files cannot be written now is skipped; the others are written all the same."""
    entries, resources = desired_entries(), resource_map()
    wrote = False
    for gw in gateway():
        try:
            wrote = gw.write_map_files(entries, resources) or wrote
        except (GatewayUnavailable, OSError) as exc:
            logger.warning("gateway %s: writing the map files: %s", gw.config.name, exc)
    return wrote


def _heal(
    report: Report, action: str, detail: dict[str, Any], target: Any = None, **kw: Any
) -> None:
    report.heals.append(action)
    audit_event_record(
        actor=None, actor_label=ACTOR, action=action, target=target, after=detail, **kw
    )
    logger.info("reconciler healed %s: %s", action, detail)


def reconcile(*, authserver: AuthServerClient | None = None) -> Report:
    """One full comparison and heal. One at a time: a run that finds another one running
    returns at once (``skipped``)."""
    report = Report()
    with reconcile_lock() as locked:
        if not locked:
            report.skipped = True
            logger.info("reconcile skipped: another run holds the lock")
            return report
        _gateways_locked(report)
        _authorization_server(report, authserver or AuthServerClient())
    if report.heals:
        _heals_notify(report)
    return report


def reconcile_gateways() -> Report:
    """Compare every gateway with the database and heal it (beat, every 10 s). One at a time,
    with the full reconcile's gateway part too: ``skipped`` when another holds the lock."""
    report = Report()
    if not _gateways_locked(report):
        report.skipped = True
    if report.heals:
        _heals_notify(report)
    return report


def _gateways_locked(report: Report) -> bool:
    """Every gateway's part, under the gateways' lock; False (nothing done) when another run
    holds it: that run is healing them now."""
    with lock_try("reconcile-gateways") as locked:
        if not locked:
            logger.info("reconciling the gateways skipped: another run holds the lock")
            return False
        _gateways(report)
    return True


def _heals_notify(report: Report) -> None:
    """Tell NHN's operators what one run healed: one notice per run, each kind of heal counted
    (the audit trail has each heal). A kind they were told of in the last
    ``RECONCILER_HEAL_NOTIFY_SECONDS`` is left out (a gateway that keeps drifting is healed every
    10 s), so a heal that recurs is told once per period and a new kind at once."""
    since = timezone.now() - datetime.timedelta(seconds=settings.RECONCILER_HEAL_NOTIFY_SECONDS)
    told = {
        heal["action"]
        for params in Notice.objects.filter(
            kind="reconciler_healed", created_at__gte=since
        ).values_list("params", flat=True)
        for heal in params.get("heals", [])
    }
    counts = Counter(action for action in report.heals if action not in told)
    if not counts:
        logger.info("reconciler heals not told again: %s", ", ".join(sorted(set(report.heals))))
        return
    with transaction.atomic():
        notify(
            kind="reconciler_healed",
            organisation=None,
            roles=[Role.NHN_OPERATOR],
            params={
                "total": sum(counts.values()),
                "heals": [
                    {
                        "action": action,
                        "label": in_each_language(functools.partial(action_label, action)),
                        "count": count,
                    }
                    for action, count in sorted(counts.items())
                ],
            },
            link="tenants:audit",
        )


@contextlib.contextmanager
def reconcile_lock() -> Iterator[bool]:
    """Hold the one-reconciler-at-a-time lock if it is free (yields True), else yield False
    (``portal.locks.lock_try``: any process, any host sharing the database)."""
    with lock_try("reconcile") as locked:
        yield locked


def _gateways(report: Report) -> None:
    """Each gateway on its own: the authorization server's keys are read once, and one gateway
    that does not answer (or refuses) is an error of the run while the others are healed."""
    keys = _signing_keys(report)
    for gw in gateway():
        try:
            _gateway(report, gw, keys)
        except (GatewayUnavailable, GatewayError) as exc:
            report.errors.append(f"gateway {gw.config.name}: {exc}")
            # Down or not: the files it will start from are the database's.
            try:
                gw.write_map_files(desired_entries(), resource_map())
            except (GatewayUnavailable, OSError) as file_error:
                report.errors.append(f"gateway {gw.config.name} files: {file_error}")


def _signing_keys(report: Report) -> list[SigningKey] | None:
    """The authorization server's signing keys, or None when it does not answer."""
    try:
        response = requests.get(
            settings.OIDC_OP_JWKS_ENDPOINT, timeout=settings.PROVISIONING_HTTP_TIMEOUT
        )
        response.raise_for_status()
        return signing_keys_from_jwks(response.json())
    except (requests.RequestException, ValueError) as exc:
        report.errors.append(f"authorization server keys: {type(exc).__name__}")
        return None


def _gateway(report: Report, gw: HAProxyGateway, keys: list[SigningKey] | None) -> None:
    """Heal one gateway from the database alone: the authorization server's keys are checked
    when it answered, and their absence does not stop the grants from being put right."""
    wanted_resources = resource_map()
    name = gw.config.name
    if keys is not None and gw.write_config(keys, scopes=scope_map()):
        # A reload loads the map files. A revocation that lands between this write and the
        # reload is in the revoked map's file too (the adapter appends it there before its
        # runtime change), so the new worker starts with it closed.
        written = desired_entries()
        gw.write_map_files(written, wanted_resources)
        gw.reload()
        # One whose runtime change reached the old worker after the new one had read the files
        # is closed again on the new one, before anything else: whatever the written file holds
        # that the database no longer wants. (A revocation committed after this read closes
        # on the new worker by itself: reload() returned once it answered.)
        still = {entry.key for entry in desired_entries()}
        for entry in written:
            if entry.key not in still:
                gw.remove(entry)
        _heal(
            report,
            "reconcile.gateway_keys",
            {"gateway": name, "reloaded": True},
            object_type="gateway",
            object_id=f"{name}/keys",
        )
    if gw.resources() != wanted_resources:
        gw.set_resources(wanted_resources)
        _heal(
            report,
            "reconcile.gateway_resources",
            {"gateway": name, "resources": len(wanted_resources)},
            object_type="gateway",
            object_id=f"{name}/resources.map",
        )
    desired = {entry.key: entry for entry in desired_entries()}
    actual_values = gw.values()
    actual = set(actual_values)
    report.entries = len(desired)
    # A changed value (the grant's service codes) is drift too, not only a missing key.
    drift = {key: entry.value for key, entry in desired.items()} != actual_values
    # Removals wait in the revoked map until a new grants map is swapped in: that swap also
    # heals drift.
    if drift or gw.revoked():
        gw.replace_all(desired.values())
        _add_back_what_the_swap_lost(gw)
        reopened = _reopen_what_a_late_close_shut(gw)
        if reopened:
            _heal(
                report,
                "reconcile.gateway_reopened",
                {"gateway": name, "reopened": reopened},
                object_type="gateway",
                object_id=f"{name}/revoked.map",
            )
    if drift:
        _heal(
            report,
            "reconcile.gateway_grants",
            {
                "gateway": name,
                "added": len(set(desired) - actual),
                "removed": len(actual - set(desired)),
                "changed": sum(
                    1
                    for key, value in actual_values.items()
                    if key in desired and desired[key].value != value
                ),
            },
            object_type="gateway",
            object_id=f"{name}/grants.map",
        )
    gw.write_map_files(desired_entries(), wanted_resources)


def _add_back_what_the_swap_lost(gw: HAProxyGateway) -> None:
    """A commit drops entries a worker added while the new version was being filled: add back
    whatever the database wants that the swap lost. Lost means missing from the grants map
    itself, not merely not passing: a key revoked after the read below is in the revoked map
    and is no loss. The add never touches the revoked map, so such a key stays closed (its
    removal revokes it even when the grants map lacked it). Then read the database once more
    and close what was revoked between the read and the add, whose close had not run yet."""
    fresh = {entry.key: entry for entry in desired_entries()}
    lost = set(fresh) - gw.granted()
    added = {key for key in lost if gw.add_if_absent(fresh[key])}
    if added:
        still = {entry.key for entry in desired_entries()}
        for key in added - still:
            gw.remove(fresh[key])


def _reopen_what_a_late_close_shut(gw: HAProxyGateway) -> int:
    """A close that ran late (its grant revoked, the same item granted again and opened since)
    leaves a key the database wants in the revoked map, and the swap keeps it there: open it
    again, then read the database once more and close what was revoked meanwhile (open, then
    check again, as a worker does). Returns how many stay open."""
    fresh = {entry.key: entry for entry in desired_entries()}
    shut = set(fresh) & gw.revoked()
    for key in shut:
        gw.upsert(fresh[key])
    if not shut:
        return 0
    still = {entry.key for entry in desired_entries()}
    for key in shut - still:
        gw.remove(fresh[key])
    return len(shut & still)


def _authorization_server(report: Report, server: AuthServerClient) -> None:
    """Every client that should be registered is, with the right scopes and keys; removed
    clients are not."""
    clients = (
        OAuthClient.objects.filter(Q(removed_at__isnull=True) | Q(registration__isnull=False))
        .select_related("registration", "vendor")
        .prefetch_related("keys")
    )
    live_scopes: dict[Any, set[str]] = {}
    registered = (GrantStatus.ACTIVE, GrantStatus.PROVISIONING)
    for client_id, scope in (
        Grant.objects.filter(status__in=registered)
        .order_by()
        .values_list("client_id", "scope")
        .distinct()
    ):
        live_scopes.setdefault(client_id, set()).add(scope)
    _unknown_registrations_remove(report, server)
    for client in clients:
        report.clients_checked += 1
        try:
            drift = _registration_drift(client, server, live_scopes.get(client.pk, set()))
            if drift:
                # Through a job's claim and lease: never beside a worker syncing the client.
                outcome = job_run_now(client=client, reason="reconcile")
                if outcome.status not in ("done", "skipped"):
                    report.errors.append(f"{client.pk}: {drift}: job {outcome.status}")
                    continue
                _heal(
                    report,
                    "reconcile.registration",
                    {"drift": drift},
                    target=client,
                    organisation=client.vendor,
                )
        except (AuthServerUnavailable, GatewayUnavailable) as exc:
            report.errors.append(f"{client.pk}: {exc}")
        except Exception as exc:  # one client's problem must not stop the others
            logger.exception("reconciling client %s", client.pk)
            report.errors.append(f"{client.pk}: {type(exc).__name__}")


def _unknown_registrations_remove(report: Report, server: AuthServerClient) -> None:
    """Remove the registrations the portal made that the database does not know: no client
    has their software_id, or their client is neither registered in the database nor wanted
    (removed, or without a valid key). Only the portal's own (the client_id derived from the
    software_id); each removal is an audit event.

    The server is listed before the database is read: a worker registers a client only after
    the commit that makes it wanted, so a registration the listing shows whose row a worker
    has not written yet belongs to a client this read finds wanted, and stays."""
    try:
        listed = server.portal_registrations()
    except (AuthServerUnavailable, AuthServerRejected) as exc:
        report.errors.append(f"registrations: {exc}")
        return
    if not listed:
        return
    now = timezone.now()
    clients = {
        str(client.pk): client
        for client in OAuthClient.objects.filter(
            pk__in=[_uuid_or_none(item.software_id) for item in listed]
        )
        .select_related("registration", "vendor")
        .prefetch_related("keys")
    }
    for item in listed:
        client = clients.get(item.software_id)
        if client is not None and _known(client, item, now):
            continue
        try:
            server.unknown_remove(item.software_id)
        except (AuthServerUnavailable, AuthServerRejected) as exc:
            report.errors.append(f"{item.client_id}: {exc}")
            continue
        detail = {"client_id": item.client_id, "software_id": item.software_id}
        if client is not None:
            _heal(
                report,
                "reconcile.registration_unknown",
                detail,
                target=client,
                organisation=client.vendor,
            )
        else:
            _heal(
                report,
                "reconcile.registration_unknown",
                detail,
                object_type="tenants.oauthclient",
                object_id=item.software_id,
            )


def _known(client: OAuthClient, item: PortalRegistration, now: Any) -> bool:
    """The database holds this registration, or wants the client registered (a worker may be
    registering it now, or will)."""
    registration: ClientRegistration | None = getattr(client, "registration", None)
    if registration is not None:
        return registration.server_client_id == item.client_id
    return client.removed_at is None and any(key.is_valid(now) for key in client.keys.all())


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _registration_drift(
    client: OAuthClient, server: AuthServerClient, live_scopes: set[str]
) -> str:
    """What differs between the client's registration and what it should be ("" for nothing);
    ``live_scopes`` are those of its active and provisioning grants. A client without a valid
    key is not registered: that is no drift (its keys all expired: it stays closed)."""
    registration: ClientRegistration | None = getattr(client, "registration", None)
    now = timezone.now()
    valid = {k.kid for k in client.keys.all() if k.is_valid(now)}
    if client.removed_at is not None:
        return "registered though removed" if registration is not None else ""
    if registration is None:
        return "not registered" if valid else ""
    try:
        actual = server.read(
            registration.registration_client_uri, registration.registration_access_token
        )
    except RegistrationGone:
        registration.metadata_hash = ""  # force the sync to register again
        registration.save(update_fields=["metadata_hash", "updated_at"])
        return "registration missing at the server"
    wanted_scopes = (
        {"tilgang:api"} if client.purpose == OAuthClient.Purpose.PORTAL_API else live_scopes
    )
    if set(actual.get("scope", "").split()) != wanted_scopes:
        registration.metadata_hash = ""
        registration.save(update_fields=["metadata_hash", "updated_at"])
        return "scope differs"
    actual_kids = {key.get("kid") for key in actual.get("jwks", {}).get("keys", [])}
    if actual_kids != valid:
        registration.metadata_hash = ""
        registration.save(update_fields=["metadata_hash", "updated_at"])
        return "keys differ"
    return ""
