"""The periods of access of the grants that exist, rebuilt from their audit events.

From now on the functions that activate and close a grant write its periods in the same
transaction. Before, only the audit trail saw it happen: every status change of a grant is an
event whose ``after`` holds the new status (``grant.activated``: active; ``grant.revoked``:
revoking; ``grant.suspended``: pending, the client's keys expired; ...). A period starts at the
event that made the grant active and ends at the first later one that made it anything else.
A new decision on a live grant (``grant.updated``) ends a period and starts the next one with
the new terms, as the services do now.

The terms of each period (who approved it and how, the instruction version, the delegation, the
service codes) are those of the grant's newest ``grant.approved`` or ``grant.updated`` event up
to its start (the event's actor approved it; the snapshot names the rest), else the grant's own.

Rows the trail says nothing about keep what the grant row knows: an active grant without an
activation event has access since its last status change; a grant that is no longer active but
whose period the trail leaves open is closed at its revocation (or its last status change).
A grant revoked without any event in the trail gets no period: nothing shows it ever passed.
Grants that already have periods are left alone, so running it again adds nothing.
"""

from django.db import migrations

#: Grants read per round, with their events.
CHUNK = 2000
TERMS_EVENTS = ("grant.approved", "grant.updated")


def _terms_of_grant(grant):
    return {
        "service_codes": grant.service_codes,
        "instruction_id": grant.instruction_id,
        "delegation_id": grant.delegation_id,
        "approved_by_id": grant.approved_by_id,
        "approved_automatically": grant.approved_automatically,
    }


def _terms_of_event(event, grant, instructions):
    """The terms a ``grant.approved``/``grant.updated`` event recorded (its actor approved)."""
    after = event.after or {}
    delegation = after.get("delegation")
    version = after.get("instruction_version")
    return {
        "service_codes": after.get("service_codes", grant.service_codes),
        "instruction_id": instructions.get((grant.kommune_id, version)) if version else None,
        "delegation_id": delegation or None,
        "approved_by_id": event.actor_id,
        "approved_automatically": event.actor_id is None or bool(delegation),
    }


def _periods_of(grant, events, instructions):
    """The grant's periods as dicts, from its events in the order they happened."""
    periods = []
    current = None  # the open period
    terms = None  # the terms recorded last, None: the grant's own

    def start(at):
        return {
            "started_at": at,
            "ended_at": None,
            "end": "",
            **(terms or _terms_of_grant(grant)),
        }

    def close(period, at, end):
        period["ended_at"] = max(at, period["started_at"])
        period["end"] = end
        periods.append(period)

    for event in events:
        status = (event.after or {}).get("status") if isinstance(event.after, dict) else None
        if event.action in TERMS_EVENTS:
            terms = _terms_of_event(event, grant, instructions)
            if current is not None and status == "active":  # a new decision while active
                close(current, event.occurred_at, "terms_changed")
                current = start(event.occurred_at)
                continue
        if status == "active" and current is None:
            current = start(event.occurred_at)
        elif status not in (None, "active") and current is not None:
            end = "keys_expired" if event.action == "grant.suspended" else "revoked"
            close(current, event.occurred_at, end)
            current = None

    # What the grant row knows where the trail is silent.
    if grant.status == "active" and current is None:
        current = start(grant.status_changed_at)
    elif grant.status != "active" and current is not None:
        if grant.revoked_at is not None:
            close(current, grant.revoked_at, "revoked")
        else:
            close(current, grant.status_changed_at, "keys_expired")
        current = None
    if current is not None:
        periods.append(current)
    return periods


def forward(apps, schema_editor):
    Grant = apps.get_model("orders", "Grant")
    GrantPeriod = apps.get_model("orders", "GrantPeriod")
    Instruction = apps.get_model("orders", "Instruction")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    instructions = {
        (kommune_id, version): pk
        for pk, kommune_id, version in Instruction.objects.values_list("pk", "kommune_id", "version")
    }
    without = (
        Grant.objects.filter(periods__isnull=True)
        .select_related("client")
        .order_by("created_at", "pk")
    )
    chunk = []
    for grant in without.iterator(chunk_size=CHUNK):
        chunk.append(grant)
        if len(chunk) == CHUNK:
            _fill(chunk, GrantPeriod, AuditEvent, instructions)
            chunk = []
    if chunk:
        _fill(chunk, GrantPeriod, AuditEvent, instructions)


def _fill(grants, GrantPeriod, AuditEvent, instructions):
    events = {}
    for event in AuditEvent.objects.filter(
        object_type="orders.grant", object_id__in=[str(grant.pk) for grant in grants]
    ).order_by("occurred_at", "id"):
        events.setdefault(event.object_id, []).append(event)
    rows = []
    for grant in grants:
        for period in _periods_of(grant, events.get(str(grant.pk), []), instructions):
            rows.append(
                GrantPeriod(
                    grant_id=grant.pk,
                    kommune_id=grant.kommune_id,
                    vendor_id=grant.client.vendor_id,
                    client_id=grant.client_id,
                    service_id=grant.service_id,
                    access=grant.access,
                    scope=grant.scope,
                    **period,
                )
            )
    GrantPeriod.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_add_grant_periods"),
        ("audit", "0002_add_newest_first_index"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
