"""The provisioning jobs page: failures first with their reason and attempts, filters, a job's
own page followed live, and the operator's retry (the API's ``runner.job_retry``)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from orders.models import Grant, GrantStatus, ProvisioningJob
from tenants.models import Organisation
from tests.conftest import World
from tests.factories import ClientFactory, GrantFactory, OrganisationFactory, ProductFactory

pytestmark = pytest.mark.django_db

Status = ProvisioningJob.Status


def url(name: str, nhn: Organisation, *args: Any) -> str:
    return reverse(f"provisioning:{name}", args=[nhn.orgnr, *args])


def as_(client: Client, people: dict[str, User], who: str) -> Client:
    client.force_login(people[who])
    return client


def job(world: World, status: str, *, age_minutes: int = 0, **fields: Any) -> ProvisioningJob:
    made = ProvisioningJob.objects.create(
        client=fields.pop("client", world.client), reason="grant.approved", status=status, **fields
    )
    ProvisioningJob.objects.filter(pk=made.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=age_minutes)
    )
    return made


@pytest.fixture
def failed(world: World) -> ProvisioningJob:
    return job(
        world,
        Status.FAILED,
        attempts=8,
        last_error="HTTP 400 from the authorization server: invalid_client_metadata",
        age_minutes=30,
    )


@pytest.mark.parametrize("who", ["nhn_operator", "nhn_auditor"])
def test_the_list_shows_failures_first_with_their_reason_and_attempts(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob, who: str
) -> None:
    newer_done = job(world, Status.DONE, age_minutes=1)
    newer_pending = job(world, Status.PENDING, age_minutes=2)

    response = as_(client, world.people, who).get(url("jobs", nhn))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Klargjøringsjobber · Tilgang</title>" in page
    assert [j.pk for j in response.context["listing"].rows] == [
        failed.pk,
        newer_pending.pk,
        newer_done.pk,
    ]
    assert "invalid_client_metadata" in page
    assert ">8</td>" in page
    assert "Feilet" in page
    assert world.client.name in page
    assert world.vendor.name in page
    assert "Tilgang gitt" in page  # what set the job off, in words
    assert ("Prøv igjen" in page) is (who == "nhn_operator")


def test_the_list_filters_by_status_client_and_vendor_and_sorts(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    done = job(world, Status.DONE)
    others = job(world, Status.FAILED, client=world.other_client)
    operator = as_(client, world.people, "nhn_operator")

    def shown(**query: str) -> list[Any]:
        response = operator.get(url("jobs", nhn), query)
        assert response.status_code == 200
        return [j.pk for j in response.context["listing"].rows]

    assert set(shown(status="failed")) == {failed.pk, others.pk}
    assert set(shown(vendor=world.vendor.orgnr)) == {failed.pk, done.pk}
    assert set(shown(client=world.other_client.name)) == {others.pk}
    assert shown(status="failed", vendor=world.other_vendor.orgnr) == [others.pk]
    assert shown(sort="created")[0] == failed.pk  # the oldest
    assert shown(sort="-attempts")[0] == failed.pk
    empty = operator.get(url("jobs", nhn), {"client": "nobody"})
    assert "Ingen jobb passer" in empty.content.decode()
    bad = operator.get(url("jobs", nhn), {"status": "exploded", "vendor": "123", "sort": "x"})
    assert bad.status_code == 200
    assert set(bad.context["form"].errors) == {"status", "vendor"}
    assert "ds-error-summary" in bad.content.decode()


def test_an_empty_queue_says_what_fills_it(client: Client, world: World, nhn: Organisation) -> None:
    ProvisioningJob.objects.all().delete()
    page = as_(client, world.people, "nhn_auditor").get(url("jobs", nhn)).content.decode()
    assert "Det er ingen klargjøringsjobber ennå" in page


def test_the_list_reads_a_constant_number_of_queries(
    client: Client, world: World, nhn: Organisation, django_assert_max_num_queries: Any
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    operator.get(url("jobs", nhn))
    for n in range(30):
        vendor = OrganisationFactory(kind=Organisation.Kind.VENDOR)
        other = ClientFactory(product=ProductFactory(vendor=vendor))
        job(world, Status.FAILED if n % 2 else Status.DONE, client=other, last_error="x")

    with django_assert_max_num_queries(12):
        response = operator.get(url("jobs", nhn))

    assert len(response.context["listing"].rows) == 25


def test_a_jobs_page_shows_its_client_its_failure_and_the_grants_that_failed_with_it(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    GrantFactory(
        client=world.client,
        kommune=world.kommune,
        status=GrantStatus.FAILED,
        status_reason_code="gave_up",
        status_reason_params={"attempts": 8, "error": "HTTP 400"},
    )

    response = as_(client, world.people, "nhn_auditor").get(url("job", nhn, failed.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert world.client.name in page
    assert "invalid_client_metadata" in page
    assert world.kommune.name in page
    assert "Ga opp etter 8 forsøk" in page
    assert 'hx-trigger="every 1s"' not in page  # failed: nothing to follow
    assert "Prøv igjen" not in page  # an auditor reads
    assert 'aria-current="page"' in page


def test_a_running_job_is_followed_live_until_it_ends(
    client: Client, world: World, nhn: Organisation
) -> None:
    running = job(world, Status.RUNNING, attempts=1)
    operator = as_(client, world.people, "nhn_operator")

    page = operator.get(url("job", nhn, running.pk)).content.decode()
    assert 'hx-trigger="every 1s"' in page
    polled = operator.get(url("job", nhn, running.pk), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200
    assert "<html" not in polled.content.decode()
    ProvisioningJob.objects.filter(pk=running.pk).update(status=Status.DONE)
    ended = operator.get(url("job", nhn, running.pk), HTTP_HX_REQUEST="true")
    assert ended.status_code == 286  # htmx stops polling
    assert "Ferdig" in ended.content.decode()


def test_retry_sends_the_failed_job_again_and_says_what_happens_next(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    stuck = GrantFactory(client=world.client, kommune=world.kommune, status=GrantStatus.FAILED)
    operator = as_(client, world.people, "nhn_operator")

    response = operator.post(url("job_retry", nhn, failed.pk), follow=True)

    assert response.redirect_chain == [(url("job", nhn, failed.pk), 302)]
    page = response.content.decode()
    assert "er sendt på nytt" in page
    assert "1 tilgang som feilet" in page
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (Status.PENDING, 0)
    stuck.refresh_from_db()
    assert stuck.status == GrantStatus.PENDING
    event = AuditEvent.objects.get(action="provisioning_job.retried")
    assert event.actor == world.people["nhn_operator"]


def test_retry_from_the_list_returns_to_the_list(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    operator = as_(client, world.people, "nhn_operator")
    back = url("jobs", nhn) + "?status=failed"

    response = operator.post(url("job_retry", nhn, failed.pk), {"next": back})
    elsewhere = operator.post(url("job_retry", nhn, failed.pk), {"next": "https://evil.example/"})

    assert response["Location"] == back
    assert elsewhere["Location"] == url("job", nhn, failed.pk)


def test_retrying_a_job_that_did_not_fail_says_so_and_changes_nothing(
    client: Client, world: World, nhn: Organisation
) -> None:
    done = job(world, Status.DONE, attempts=1)

    response = as_(client, world.people, "nhn_operator").post(
        url("job_retry", nhn, done.pk), follow=True
    )

    assert response.status_code == 200
    assert "Bare feilede jobber" in response.content.decode()
    done.refresh_from_db()
    assert (done.status, done.attempts) == (Status.DONE, 1)
    assert not AuditEvent.objects.filter(action="provisioning_job.retried").exists()


def test_an_auditor_may_not_retry(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    response = as_(client, world.people, "nhn_auditor").post(url("job_retry", nhn, failed.pk))
    assert response.status_code == 403
    failed.refresh_from_db()
    assert failed.status == Status.FAILED


@pytest.mark.parametrize(
    "who", ["kommune_admin", "kommune_reader", "vendor_admin", "vendor_developer"]
)
def test_kommune_and_vendor_people_do_not_find_the_jobs(
    client: Client, world: World, nhn: Organisation, failed: ProvisioningJob, who: str
) -> None:
    other = as_(client, world.people, who)
    assert other.get(url("jobs", nhn)).status_code == 404
    assert other.get(url("job", nhn, failed.pk)).status_code == 404
    assert other.post(url("job_retry", nhn, failed.pk)).status_code == 404
    failed.refresh_from_db()
    assert failed.status == Status.FAILED


def test_an_unknown_job_is_not_found(client: Client, world: World, nhn: Organisation) -> None:
    operator = as_(client, world.people, "nhn_operator")
    missing = "6a1c3c2e-0000-4000-8000-000000000000"
    assert operator.get(url("job", nhn, missing)).status_code == 404
    assert operator.post(url("job_retry", nhn, missing)).status_code == 404
    assert operator.get(f"/o/{nhn.orgnr}/jobs/not-a-uuid/").status_code == 404


def test_retry_is_a_post_with_a_csrf_token(
    world: World, nhn: Organisation, failed: ProvisioningJob
) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.people["nhn_operator"])
    assert strict.get(url("job_retry", nhn, failed.pk)).status_code == 405
    assert strict.post(url("job_retry", nhn, failed.pk)).status_code == 403
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    assert Grant.objects.count() == 0
