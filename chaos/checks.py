"""What `make chaos` checks after each fault, as functions of the state read (no I/O here): the
harness reads the database, the authorization server and each gateway (chaos/run.py), these say
what is wrong. Each returns a list of problems, empty when the check passes."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The audit actions every grant's history must hold, by the grant's final status.
AUDIT_REQUIRED = {
    "active": {"grant.approved", "grant.activated"},
    "revoked": {"grant.approved", "grant.revoked", "grant.revoked_everywhere"},
}


def grant_problems(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """Every grant ordered is in the status it must end in (``active``, or ``revoked`` for those
    revoked), none is missing, none unknown."""
    problems = []
    for grant, status in sorted(expected.items()):
        found = actual.get(grant)
        if found is None:
            problems.append(f"grant {grant}: lost (expected {status})")
        elif found != status:
            problems.append(f"grant {grant}: {found}, expected {status}")
    problems += [f"grant {grant}: not ordered by the run" for grant in actual.keys() - expected]
    return problems


@dataclass(frozen=True)
class Listed:
    """A registration as the authorization server lists it, with the scope it holds."""

    client_id: str
    software_id: str
    scope: frozenset[str]


def registration_problems(
    registered: Mapping[str, str],
    scopes: Mapping[str, frozenset[str]],
    listed: Iterable[Listed],
) -> list[str]:
    """The server's registrations are exactly the database's: ``registered`` maps each client's
    software_id (the portal's id for it) to the client_id its registration row holds, ``scopes``
    the scope each must have. A duplicated registration, one the database does not hold
    (orphaned), one missing, or one with another scope is a problem."""
    items = list(listed)
    problems = []
    for key, count in Counter(item.client_id for item in items).items():
        if count > 1:
            problems.append(f"registration {key}: listed {count} times")
    for key, count in Counter(item.software_id for item in items).items():
        if count > 1:
            problems.append(f"software_id {key}: {count} registrations")
    seen = set()
    for item in items:
        seen.add(item.software_id)
        wanted = registered.get(item.software_id)
        if wanted is None:
            problems.append(f"registration {item.client_id}: orphaned (no client holds it)")
        elif wanted != item.client_id:
            problems.append(f"registration {item.client_id}: the database holds {wanted}")
        elif item.scope != scopes.get(item.software_id, frozenset()):
            want = " ".join(sorted(scopes.get(item.software_id, frozenset())))
            problems.append(
                f"registration {item.client_id}: scope {' '.join(sorted(item.scope))!r}, "
                f"expected {want!r}"
            )
    problems += [
        f"client {software_id}: registration {client_id} missing at the server"
        for software_id, client_id in sorted(registered.items())
        if software_id not in seen
    ]
    return problems


def map_problems(where: str, desired: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """One gateway's map (``where``: its name and which map) holds exactly the passing grants'
    keys with their values: no entry without a passing grant, none missing."""
    problems = [
        f"{where}: {key} without a passing grant" for key in sorted(actual.keys() - desired)
    ]
    problems += [f"{where}: {key} missing" for key in sorted(desired.keys() - actual)]
    problems += [
        f"{where}: {key} is {actual[key]!r}, expected {value!r}"
        for key, value in sorted(desired.items())
        if key in actual and actual[key] != value
    ]
    return problems


def map_file_entries(grants: str, revoked: str) -> dict[str, str]:
    """What a gateway started from its map files lets pass: the grants file's lines (key value)
    less the revoked file's keys."""
    closed = {line.split()[0] for line in revoked.splitlines() if line.strip()}
    entries = {}
    for line in grants.splitlines():
        if line.strip():
            key, _, value = line.partition(" ")
            if key not in closed:
                entries[key] = value.strip()
    return entries


def audit_problems(
    *,
    broken: str | None,
    earlier: Mapping[int, str],
    now: Mapping[int, str],
    actions: Mapping[str, set[str]],
    final: Mapping[str, str],
) -> list[str]:
    """The audit trail: its chain verifies (``broken`` names the first event that does not), every
    event seen earlier in the run (id: hash) is still there unchanged, and every grant's history
    holds the events its final status needs (``AUDIT_REQUIRED``)."""
    problems = [f"audit chain broken: {broken}"] if broken else []
    for event_id, chain_hash in sorted(earlier.items()):
        if event_id not in now:
            problems.append(f"audit event {event_id}: lost")
        elif now[event_id] != chain_hash:
            problems.append(f"audit event {event_id}: rewritten")
    for grant, status in sorted(final.items()):
        missing = AUDIT_REQUIRED.get(status, set()) - actions.get(grant, set())
        if missing:
            problems.append(f"grant {grant}: no audit event {', '.join(sorted(missing))}")
    return problems


@dataclass(frozen=True)
class Probe:
    """One request the prober sent through a gateway for a revoked grant."""

    grant: str
    gateway: str
    sent_at: datetime.datetime
    status: int


def prober_violations(
    probes: Iterable[Probe], closed_at: Mapping[str, datetime.datetime]
) -> list[str]:
    """Every 2xx a gateway answered for a grant after it was closed (``closed_at``: when its
    status became ``revoked``, the gateway's close done): each is a revoked grant that passed."""
    return [
        f"grant {probe.grant} passed {probe.gateway} with {probe.status} at "
        f"{probe.sent_at.isoformat()}, revoked at {closed_at[probe.grant].isoformat()}"
        for probe in probes
        if 200 <= probe.status < 300
        and probe.grant in closed_at
        and probe.sent_at > closed_at[probe.grant]
    ]


def revocation_lag(
    probes: Iterable[Probe], revoke_answered: Mapping[str, datetime.datetime]
) -> float:
    """The longest a revoked grant still passed after its revocation was answered (seconds;
    0 when none did): the window before the gateway's close, reported, not a failure."""
    lags = [
        (probe.sent_at - revoke_answered[probe.grant]).total_seconds()
        for probe in probes
        if 200 <= probe.status < 300
        and probe.grant in revoke_answered
        and probe.sent_at > revoke_answered[probe.grant]
    ]
    return max(lags, default=0.0)
