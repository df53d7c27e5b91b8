"""`make chaos`'s checks (chaos/checks.py) find each kind of wrong state they are there for: a
grant lost or in the wrong status, a registration duplicated, orphaned, missing or with the wrong
scope, a map entry without a passing grant or missing, an audit event lost or a broken chain, and
a revoked grant the prober saw pass. Each is built here directly; the right state passes."""

from __future__ import annotations

import datetime

from chaos import checks

T0 = datetime.datetime(2026, 12, 2, 5, 0, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


def test_grants_in_their_final_status_pass() -> None:
    assert (
        checks.grant_problems({"g1": "active", "g2": "revoked"}, {"g1": "active", "g2": "revoked"})
        == []
    )


def test_a_grant_in_the_wrong_status_lost_or_unknown_is_reported() -> None:
    problems = checks.grant_problems(
        {"g1": "active", "g2": "revoked", "g3": "active"},
        {"g1": "provisioning", "g2": "revoking", "g4": "active"},
    )
    assert problems == [
        "grant g1: provisioning, expected active",
        "grant g2: revoking, expected revoked",
        "grant g3: lost (expected active)",
        "grant g4: not ordered by the run",
    ]


SCOPES = {"c1": frozenset({"nhn:ksp/patient.read"}), "c2": frozenset({"tilgang:api"})}
REGISTERED = {"c1": "tilgang-c1", "c2": "tilgang-c2"}
LISTED = [
    checks.Listed("tilgang-c1", "c1", frozenset({"nhn:ksp/patient.read"})),
    checks.Listed("tilgang-c2", "c2", frozenset({"tilgang:api"})),
]


def test_the_servers_registrations_as_the_database_holds_them_pass() -> None:
    assert checks.registration_problems(REGISTERED, SCOPES, LISTED) == []


def test_a_duplicated_registration_is_reported() -> None:
    problems = checks.registration_problems(REGISTERED, SCOPES, [*LISTED, LISTED[0]])
    assert "registration tilgang-c1: listed 2 times" in problems
    assert "software_id c1: 2 registrations" in problems


def test_an_orphaned_registration_is_reported() -> None:
    orphan = checks.Listed("tilgang-c9", "c9", frozenset({"nhn:ksp/patient.read"}))
    problems = checks.registration_problems(REGISTERED, SCOPES, [*LISTED, orphan])
    assert problems == ["registration tilgang-c9: orphaned (no client holds it)"]


def test_a_missing_registration_or_one_with_another_scope_is_reported() -> None:
    wider = checks.Listed("tilgang-c1", "c1", frozenset({"nhn:ksp/patient.read", "x"}))
    assert checks.registration_problems(REGISTERED, SCOPES, [wider]) == [
        "registration tilgang-c1: scope 'nhn:ksp/patient.read x', expected 'nhn:ksp/patient.read'",
        "client c2: registration tilgang-c2 missing at the server",
    ]


DESIRED = {"production/c1/840000001/patient/read": "-"}


def test_a_map_with_exactly_the_passing_grants_passes() -> None:
    assert checks.map_problems("gw-a runtime", DESIRED, dict(DESIRED)) == []


def test_a_map_entry_without_a_passing_grant_is_reported() -> None:
    extra = {**DESIRED, "production/c1/840000002/patient/read": "-"}
    assert checks.map_problems("gw-b runtime", DESIRED, extra) == [
        "gw-b runtime: production/c1/840000002/patient/read without a passing grant"
    ]


def test_a_missing_map_entry_or_one_with_another_value_is_reported() -> None:
    key = next(iter(DESIRED))
    assert checks.map_problems("gw-a map files", DESIRED, {}) == [f"gw-a map files: {key} missing"]
    assert checks.map_problems("gw-a runtime", DESIRED, {key: "care-plan"}) == [
        f"gw-a runtime: {key} is 'care-plan', expected '-'"
    ]


def test_the_map_files_pass_what_the_grants_file_holds_less_the_revoked_file() -> None:
    grants = "a/1 -\nb/2 patient\n\n"
    assert checks.map_file_entries(grants, "b/2 1\n") == {"a/1": "-"}
    assert checks.map_file_entries(grants, "") == {"a/1": "-", "b/2": "patient"}


FINAL = {"g1": "active", "g2": "revoked"}
ACTIONS = {
    "g1": {"grant.approved", "grant.provisioning", "grant.activated"},
    "g2": {"grant.approved", "grant.revoked", "grant.revoked_everywhere"},
}


def test_a_whole_verified_trail_passes() -> None:
    problems = checks.audit_problems(
        broken=None, earlier={1: "h1"}, now={1: "h1", 2: "h2"}, actions=ACTIONS, final=FINAL
    )
    assert problems == []


def test_a_broken_chain_is_reported() -> None:
    problems = checks.audit_problems(
        broken="event 7", earlier={}, now={}, actions=ACTIONS, final=FINAL
    )
    assert problems == ["audit chain broken: event 7"]


def test_an_audit_event_lost_or_rewritten_is_reported() -> None:
    problems = checks.audit_problems(
        broken=None, earlier={1: "h1", 2: "h2"}, now={2: "hx"}, actions=ACTIONS, final=FINAL
    )
    assert problems == ["audit event 1: lost", "audit event 2: rewritten"]


def test_a_grant_without_the_events_of_its_status_is_reported() -> None:
    problems = checks.audit_problems(
        broken=None,
        earlier={},
        now={},
        actions={"g1": {"grant.approved"}, "g2": {"grant.approved", "grant.revoked"}},
        final=FINAL,
    )
    assert problems == [
        "grant g1: no audit event grant.activated",
        "grant g2: no audit event grant.revoked_everywhere",
    ]


def test_the_prober_reports_a_revoked_grant_that_passed_after_its_close() -> None:
    probes = [
        checks.Probe("g2", "gw-a", T0 - SECOND, 200),  # before the close: not a violation
        checks.Probe("g2", "gw-b", T0 + SECOND, 403),
        checks.Probe("g2", "gw-b", T0 + 2 * SECOND, 200),
    ]
    violations = checks.prober_violations(probes, {"g2": T0})
    assert len(violations) == 1
    assert violations[0].startswith("grant g2 passed gw-b with 200 at 2026-12-02T05:00:02")


def test_the_prober_finds_nothing_when_revoked_grants_are_refused() -> None:
    probes = [checks.Probe("g2", gw, T0 + SECOND, 403) for gw in ("gw-a", "gw-b")]
    assert checks.prober_violations(probes, {"g2": T0}) == []


def test_the_revocation_lag_is_the_longest_pass_after_the_revoke_answered() -> None:
    probes = [
        checks.Probe("g2", "gw-a", T0 + SECOND, 200),
        checks.Probe("g3", "gw-a", T0 + 3 * SECOND, 200),
        checks.Probe("g3", "gw-b", T0 + 9 * SECOND, 403),
    ]
    assert checks.revocation_lag(probes, {"g2": T0, "g3": T0}) == 3.0
    assert checks.revocation_lag([], {"g2": T0}) == 0.0
