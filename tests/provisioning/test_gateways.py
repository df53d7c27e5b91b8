"""Several gateways (issue 14, item 1): every change reaches every gateway, one that is down does
not hold the others back, and when it returns it converges within 30 s, from its files and the
reconciler. Real HAProxy instances, two of them; the stack's tests add real workers, beat and
the oidc-provider, and call through each gateway with real tokens."""

# The fixtures are imported, so every test naming one as a parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEvent
from orders import services
from orders.models import GrantStatus, ProvisioningJob
from portal import celery_app
from provisioning import tasks as provisioning_tasks
from provisioning.gateway import (
    Entry,
    GatewayConfig,
    Gateways,
    GatewayUnavailable,
    HAProxyGateway,
    MapFileUnwritable,
)
from provisioning.reconcile import desired_entries, reconcile_gateways
from tests.provisioning.gateway_fixtures import (  # noqa: F401 - fixtures
    RESOURCES,
    Gateway,
    map_disk_full,
    rsa_signing_key,
    two_gateways,
)
from tests.provisioning.stack import Stack, stack_two_gateways, wait_for  # noqa: F401
from tests.provisioning.test_gateway_fhir import BASE, CLIENT, send, token
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir, status_of

#: How long a gateway that comes back has to agree with the database (the issue's figure).
CONVERGENCE = 30.0


def passes(gw: Gateway, client_id: str = CLIENT) -> bool:
    return send(gw, "GET", f"{BASE}/Patient/1", token(gw, client_id)).status == 200


def revoked_file(gw: Gateway) -> set[str]:
    lines = gw.config.revoked_map.read_text().splitlines()
    return {line.split(" ", 1)[0] for line in lines if line.strip()}


# -- the adapter: one change, every gateway --------------------------------------------------


def test_a_change_reaches_every_gateway(two_gateways: tuple[Gateway, Gateway]) -> None:
    first, second = two_gateways
    both = Gateways([first.adapter, second.adapter])
    granted = Entry("production", CLIENT, "123456789", "patient", "read")

    both.upsert(granted)

    assert passes(first)
    assert passes(second)
    both.remove(granted)
    assert not passes(first)
    assert not passes(second)
    assert both.behind == {}


def test_a_gateway_that_is_down_does_not_hold_the_others_back_and_starts_closed(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    first, second = two_gateways
    both = Gateways([first.adapter, second.adapter])
    old = Entry("production", "old-client", "123456789", "patient", "read")
    both.upsert(old)
    for gw in two_gateways:  # the beat's map files, written while both were up
        gw.adapter.write_map_files([old], RESOURCES)
    second.stop()

    new = Entry("production", CLIENT, "123456789", "patient", "read")
    both.upsert(new)  # opened where it can be: no exception, the other one is behind
    both.remove(old)  # closed where it can be, and in the files of both

    assert passes(first, CLIENT)
    assert not passes(first, "old-client")
    assert set(both.behind) == {"gw-b"}
    assert old.key in revoked_file(second)
    second.start()  # from its files alone: the revoked grant stays closed
    assert not passes(second, "old-client")


def test_an_opening_that_no_gateway_took_is_tried_again(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    for gw in two_gateways:
        gw.stop()
    both = Gateways([gw.adapter for gw in two_gateways])

    with pytest.raises(GatewayUnavailable, match="no gateway answered"):
        both.upsert(Entry("production", CLIENT, "123456789", "patient", "read"))


def test_a_revocation_a_down_gateways_file_cannot_hold_is_not_done(
    two_gateways: tuple[Gateway, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down and its disk full: nothing would keep the grant closed there when it starts, so
    the revocation must be tried again (the job's retry), though the other gateway closed."""
    first, second = two_gateways
    both = Gateways([first.adapter, second.adapter])
    granted = Entry("production", CLIENT, "123456789", "patient", "read")
    both.upsert(granted)
    second.stop()

    map_disk_full(monkeypatch, "_revoked_file_append_once")

    with pytest.raises(MapFileUnwritable):
        both.remove(granted)
    assert not passes(first)


def test_a_running_gateway_whose_disk_is_full_closes_the_revoked_grant_all_the_same(
    two_gateways: tuple[Gateway, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map files' disk full (`make chaos`, disk_full: revoked grants passed for as long as
    it was): the running gateways close the grant at once, and the revocation is still tried
    again (MapFileUnwritable) until the line is in their files too."""
    first, second = two_gateways
    both = Gateways([first.adapter, second.adapter])
    granted = Entry("production", CLIENT, "123456789", "patient", "read")
    both.upsert(granted)

    map_disk_full(monkeypatch)

    with pytest.raises(MapFileUnwritable):
        both.remove(granted)
    assert not passes(first)
    assert not passes(second)
    monkeypatch.undo()  # the disk has room again: the retry writes the line, and is done
    both.remove(granted)
    assert granted.key in revoked_file(first)
    assert not passes(first)


def test_closing_several_grants_on_a_full_disk_closes_every_one_of_them(
    two_gateways: tuple[Gateway, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``remove_all`` goes on after an entry whose line the disk could not take (it used to
    stop there, and the grants after it kept passing for as long as the disk was full)."""
    first, second = two_gateways
    both = Gateways([first.adapter, second.adapter])
    other = "other-client"
    entries = [Entry("production", c, "123456789", "patient", "read") for c in (CLIENT, other)]
    for entry in entries:
        both.upsert(entry)

    map_disk_full(monkeypatch)

    with pytest.raises(MapFileUnwritable):
        both.remove_all(entries)
    assert [passes(gw, c) for gw in (first, second) for c in (CLIENT, other)] == [False] * 4


# -- the whole stack: workers, closer, beat, the provider, two gateways ----------------------


def _agree(stack: Stack) -> bool:
    """Every gateway's running map (``show map``, less the revoked map) is the database's."""
    wanted = {entry.key for entry in desired_entries()}
    try:
        return all(gw.entries() == wanted for gw in stack.gateways.values())
    except GatewayUnavailable:
        return False


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_grants_opened_and_revoked_while_a_gateway_is_down_reach_it_within_30_s_of_its_return(
    stack_two_gateways: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_two_gateways
    stack.start_worker()
    stack.start_close_worker()
    stack.start_beat()  # the map files every 5 s, the gateways' reconciler every 10 s
    vendor = Vendor()
    patient, observation = vendor.order("patient.read", "observation.write")
    before = vendor.token_once_active(stack, patient, observation)
    wait_for(lambda: _agree(stack), timeout=DEADLINE, what="both gateways open")
    for via in stack.gateways:
        assert stack.call(fhir(vendor.kommune, "Patient/1"), before, via=via).status_code == 200

    stack.stop_haproxy("gw-b")
    services.grant_revoke(grant=patient, actor=vendor.kommune_admin)
    [care_plan] = vendor.order("care-plan.read")

    # The down gateway holds nothing back: the revocation and the new grant are done.
    wait_for(
        lambda: status_of(patient) == GrantStatus.REVOKED and active(care_plan),
        timeout=DEADLINE,
        what="revoked and active while gw-b is down",
    )
    after = stack.access_token(vendor.client_id(), vendor.key)
    assert stack.call(fhir(vendor.kommune, "Patient/1"), before, via="gw-a").status_code == 403
    assert stack.call(fhir(vendor.kommune, "CarePlan/1"), after, via="gw-a").status_code == 200
    noted = ProvisioningJob.objects.filter(client=vendor.client, last_error__contains="gw-b")
    assert noted.filter(status=ProvisioningJob.Status.DONE).exists()

    returned = time.monotonic()
    stack.start_haproxy("gw-b")

    def converged() -> bool:
        if not _agree(stack):
            return False
        for via in stack.gateways:
            if stack.call(fhir(vendor.kommune, "Patient/1"), before, via=via).status_code != 403:
                return False
            if stack.call(fhir(vendor.kommune, "CarePlan/1"), after, via=via).status_code != 200:
                return False
            observation_ = stack.call(fhir(vendor.kommune, "Observation"), after, "POST", via=via)
            if observation_.status_code != 200:
                return False
        return True

    wait_for(converged, timeout=CONVERGENCE, what="gw-b agrees with the database")
    with capsys.disabled():
        print(f"\ngw-b converged {time.monotonic() - returned:.2f} s after it started again")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_reconciler_heals_each_gateway_on_its_own_and_a_down_one_holds_none_back(
    stack_two_gateways: Stack,
) -> None:
    stack = stack_two_gateways
    stack.start_worker()
    vendor = Vendor()
    [patient] = vendor.order("patient.read")
    token_ = vendor.token_once_active(stack, patient)
    path = fhir(vendor.kommune, "Patient/1")
    wait_for(lambda: _agree(stack), timeout=DEADLINE, what="both gateways open")

    # gw-b comes back from files older than the grant (restored from an old disk), gw-a is down.
    stack.stop_haproxy("gw-b")
    stack.gateways["gw-b"].config.grants_map.write_text("")
    stack.start_haproxy("gw-b")
    stack.stop_haproxy("gw-a")
    assert stack.call(path, token_, via="gw-b").status_code == 403

    report = reconcile_gateways()

    assert stack.call(path, token_, via="gw-b").status_code == 200
    assert [error.split(":")[0] for error in report.errors] == ["gateway gw-a"]
    heals = AuditEvent.objects.filter(action="reconcile.gateway_grants")
    assert [(event.object_id, event.after["gateway"]) for event in heals] == [
        ("gw-b/grants.map", "gw-b")
    ]
    stack.start_haproxy("gw-a")  # from the files the reconciler wrote while it was down
    assert reconcile_gateways().heals == []
    assert _agree(stack)


# -- beat on two machines: the periodic work runs once ---------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("first_task", "second_task"),
    [
        ("provisioning.reconcile_gateways", "provisioning.reconcile_gateways"),
        ("provisioning.reconcile", "provisioning.reconcile_gateways"),
        ("provisioning.reconcile_gateways", "provisioning.reconcile"),
    ],
)
def test_two_beats_runs_of_the_reconciler_at_once_heal_each_gateway_once(
    stack_two_gateways: Stack,
    monkeypatch: pytest.MonkeyPatch,
    first_task: str,
    second_task: str,
) -> None:
    """Two beats send the same task at the same moment; the first run is held inside its heal
    until the second has finished: without the lock both would see the drift and heal it."""
    stack = stack_two_gateways
    stack.start_worker()
    assert provisioning_tasks.reconcile_gateways.name in celery_app.tasks  # registered
    vendor = Vendor()
    [patient] = vendor.order("patient.read")
    wait_for(lambda: active(patient), timeout=DEADLINE, what="active")
    wait_for(lambda: _agree(stack), timeout=DEADLINE, what="both gateways open")
    for gw in stack.gateways.values():  # drift on both: their running maps emptied
        gw.replace_all([])
    inside, leave = threading.Event(), threading.Event()
    real_replace_all = HAProxyGateway.replace_all

    def replace_all(self: HAProxyGateway, entries: Any) -> None:
        if threading.current_thread().name == "first":
            inside.set()
            leave.wait(timeout=30)
        real_replace_all(self, entries)

    monkeypatch.setattr(HAProxyGateway, "replace_all", replace_all)
    results: list[Any] = []

    def first() -> None:
        try:
            results.append(celery_app.tasks[first_task]())
        finally:
            connection.close()

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert inside.wait(timeout=30)
        second = celery_app.tasks[second_task]()
    finally:
        leave.set()
        thread.join(timeout=60)

    heals = AuditEvent.objects.filter(action="reconcile.gateway_grants")
    assert sorted(heals.values_list("object_id", flat=True)) == [
        "gw-a/grants.map",
        "gw-b/grants.map",
    ]
    assert results
    assert results[0]["heals"] >= 2
    # The second healed no gateway again (its other heals, if any, are the authorization
    # server's: registrations that earlier tests left at the shared provider).
    gateway_heals = list(
        AuditEvent.objects.filter(action__startswith="reconcile.gateway").values_list(
            "action", "object_id"
        )
    )
    assert len(gateway_heals) == len(set(gateway_heals)), second
    assert _agree(stack)


def test_each_gateway_has_a_name_of_its_own(tmp_path: Path) -> None:
    """The audit trail, the logs and the job's note name a gateway among several."""

    with pytest.raises(ValueError, match="name"):
        GatewayConfig(tmp_path, "127.0.0.1:1", "127.0.0.1:2", "http://i", "http://a", "a b")
    one = HAProxyGateway(GatewayConfig(tmp_path / "a", "127.0.0.1:1", "127.0.0.1:2", "i", "a"))
    with pytest.raises(ValueError, match="differ"):
        Gateways([one, one])


def test_the_gateways_come_from_the_settings_list_or_the_single_gateway_settings(
    settings: Any, tmp_path: Path
) -> None:
    from provisioning.settings import access_log_sources, gateway_configs

    settings.GATEWAYS = []
    settings.GATEWAY_DIR = tmp_path / "only"
    [only] = gateway_configs()
    assert (only.name, only.root, only.bind) == (
        "gateway",
        tmp_path / "only",
        settings.GATEWAY_BIND,
    )
    assert [name for name, _ in access_log_sources()] == ["gateway"]

    settings.GATEWAYS = [
        {"name": "gw-a", "dir": str(tmp_path / "a"), "bind": "127.0.0.1:1"},
        {"name": "gw-b", "dir": str(tmp_path / "b"), "bind": "127.0.0.1:2", "upstream": "h:3"},
    ]
    first, second = gateway_configs()
    assert (first.name, first.upstream) == ("gw-a", settings.GATEWAY_UPSTREAM)
    assert (second.name, second.upstream, second.bind) == ("gw-b", "h:3", "127.0.0.1:2")
    assert access_log_sources() == [
        ("gw-a", tmp_path / "a" / "access.log"),
        ("gw-b", tmp_path / "b" / "access.log"),
    ]


@pytest.mark.django_db
def test_a_done_jobs_page_shows_the_gateways_behind_as_a_note_not_a_failure(
    client: Any, people: dict[str, Any], nhn: Any
) -> None:
    from django.urls import reverse

    from provisioning.runner import behind_note
    from tests.factories import ClientFactory

    job = ProvisioningJob.objects.create(
        client=ClientFactory(),
        reason="grant",
        status=ProvisioningJob.Status.DONE,
        last_error=behind_note({"gw-b": "runtime.sock: refused"}),
    )
    client.force_login(people["nhn_operator"])

    page = client.get(reverse("provisioning:job", args=[nhn.orgnr, job.pk])).content.decode()

    assert "Merknad" in page
    assert "Årsak til feilen" not in page
    assert "svarte ikke: gw-b" in page
