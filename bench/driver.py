"""The benchmark's measuring side, run by `bench/run.py` inside the stack it started:
`python -m bench.driver --scale quick --output FILE`. It seeds national data, then times the
product's promises through the real web server, workers, authorization server and gateway."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

import jwt  # noqa: E402
import requests  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from bench import access_history, audit_export, load, seed  # noqa: E402
from bench import data_access as bench_data_access  # noqa: E402
from bench.scale import SCALES, Scale  # noqa: E402
from orders import services  # noqa: E402
from orders.models import Grant, GrantPeriod, GrantStatus, ProvisioningJob  # noqa: E402
from provisioning.authserver import AuthServerClient, client_metadata  # noqa: E402
from provisioning.gateway import Entry  # noqa: E402
from provisioning.overview import NATIONAL_FIGURES_KEY, national_figures  # noqa: E402
from provisioning.reconcile import desired_entries, reconcile  # noqa: E402
from provisioning.runner import gateway  # noqa: E402
from tenants.models import OAuthClient, Organisation, Role  # noqa: E402

DEADLINE = 60.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values) if values else float("nan"),
    }


class Vendor:
    """The vendor's systems: tokens by private_key_jwt, calls to the gateway and the API."""

    def __init__(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        # The key object, not its PEM: PyJWT would parse and check a PEM on every assertion
        # (tens of milliseconds), which is the vendor's cost, not the portal's.
        self.key = key
        self.kid = kid
        self.token_endpoint = f"{settings.OIDC_OP_ISSUER}/token"
        self.gateway = settings.GATEWAY_URL
        self.web = os.environ["BENCH_WEB_URL"]
        self.http = requests.Session()

    def token(self, client_id: str) -> str:
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": self.token_endpoint,
                "jti": str(uuid.uuid4()),
                "iat": now,
                "exp": now + 60,
            },
            self.key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )
        response = requests.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def fhir(self, token: str, kommune: str, resource: str, method: str) -> int:
        return self.fhir_answer(token, kommune, resource, method)[0]

    def fhir_answer(self, token: str, kommune: str, resource: str, method: str) -> tuple[int, str]:
        """The gateway's status and, for a refusal, its error code."""
        response = requests.request(
            method,
            f"{self.gateway}/{kommune}/fhir/{resource}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        if response.status_code == 200:
            return 200, ""
        return response.status_code, response.json().get("error", "")

    def api(self, token: str, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.web}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    def order(
        self, token: str, client: OAuthClient, kommune: str, code: str, access: str
    ) -> requests.Response:
        """One item for one kommune, through the API as the vendor's system orders it."""
        return self.api(
            token,
            "POST",
            "/api/v1/access-requests/",
            {
                "client": str(client.pk),
                "kommune": kommune,
                "items": [{"service": code, "access": access}],
            },
        )


def wait_registered(*clients: OAuthClient) -> list[str]:
    ids = []
    for client in clients:
        deadline = time.monotonic() + DEADLINE
        while not OAuthClient.objects.get(pk=client.pk).client_id:
            if time.monotonic() > deadline:
                raise SystemExit(f"client {client.name} was not provisioned in {DEADLINE} s")
            time.sleep(0.05)
        ids.append(OAuthClient.objects.get(pk=client.pk).client_id)
    return ids


RESOURCE = {"patient": "Patient/1", "observation": "Observation"}
#: Where onboarding time goes (ms): the API call, then until the gateway's first 200.
ONBOARDING_PARTS: dict[str, list[float]] = {}
METHOD = {"read": "GET", "write": "POST"}


def onboard(
    parts: dict[str, list[float]] | None,
    vendor: Vendor,
    api_token: str,
    client: OAuthClient,
    client_id: str,
    kommune: str,
    code: str,
    access: str,
) -> float:
    """Seconds from submitting the order to the first 200 from the gateway with a fresh token."""
    started = time.perf_counter()
    response = vendor.order(api_token, client, kommune, code, access)
    if response.status_code != 201 or response.json()["items"][0]["status"] != "approved":
        raise SystemExit(f"order refused: {response.status_code} {response.text[:300]}")
    submitted = time.perf_counter()
    # As a vendor's system does: one token fetched after the order, then the call retried until
    # the gateway lets it through. The gateway opens a grant only after the authorization server
    # accepted its scope, and also requires that scope in the token: a token fetched before then
    # is refused with `insufficient_scope` (RFC 6750), and only then is a new one fetched.
    # Fetching one per try would burn the cores the worker needs.
    token = vendor.token(client_id)
    tries = 0
    while True:
        tries += 1
        status, error = vendor.fhir_answer(token, kommune, RESOURCE[code], METHOD[access])
        if error == "insufficient_scope":
            token = vendor.token(client_id)
        elif status == 200:
            done = time.perf_counter()
            if parts is not None:
                parts.setdefault("submit_api", []).append((submitted - started) * 1000)
                parts.setdefault("until_200", []).append((done - submitted) * 1000)
                parts.setdefault("tries", []).append(tries)
            return done - started
        if time.perf_counter() - started > DEADLINE:
            raise SystemExit(f"onboarding {kommune} {code}: no 200 within {DEADLINE} s")


class Floor:
    """The same external work without the portal: one RFC 7592 update, one map add, one token,
    one gateway call."""

    def __init__(self, vendor: Vendor, public_jwk: dict[str, Any]) -> None:
        self.vendor = vendor
        self.server = AuthServerClient()
        self.software_id = str(uuid.uuid4())
        self.jwks = {"keys": [public_jwk]}
        self.registration = self.server.register(self._metadata(0))
        self.gw = gateway()
        self.parts: dict[str, list[float]] = {}

    def _metadata(self, i: int) -> dict[str, Any]:
        scopes = ["nhn:ksp/patient.read"] + (["nhn:ksp/care-plan.read"] if i % 2 else [])
        return client_metadata(
            software_id=self.software_id, name="floor", jwks=self.jwks, scopes=scopes
        )

    def once(self, i: int, kommune: str) -> float:
        started = time.perf_counter()
        reg = self.registration
        self.server.update(
            reg.registration_client_uri,
            reg.registration_access_token,
            reg.client_id,
            self._metadata(i),
        )
        t_update = time.perf_counter()
        self.gw.upsert(Entry("production", reg.client_id, kommune, "patient", "read"))
        t_map = time.perf_counter()
        token = self.vendor.token(reg.client_id)
        t_token = time.perf_counter()
        status = self.vendor.fhir(token, kommune, "Patient/1", "GET")
        elapsed = time.perf_counter() - started
        for part, seconds in (
            ("rfc7592_update", t_update - started),
            ("map_add", t_map - t_update),
            ("token", t_token - t_map),
            ("gateway_call", started + elapsed - t_token),
        ):
            self.parts.setdefault(part, []).append(seconds * 1000)
        if status != 200:
            raise SystemExit(f"floor call answered {status}")
        return elapsed


#: Where revocation time goes (ms): the API call, then until the gateway's first 403.
REVOCATION_PARTS: dict[str, list[float]] = {}


def revoke(vendor: Vendor, operator_token: str, grant: Grant, client_id: str) -> float:
    """Seconds from `revoke` to the gateway's 403 for a token issued before."""
    token = vendor.token(client_id)
    kommune = grant.kommune.orgnr
    started = time.perf_counter()
    response = vendor.api(operator_token, "POST", f"/api/v1/grants/{grant.pk}/revoke/", {})
    if response.status_code != 200:
        raise SystemExit(f"revoke answered {response.status_code}: {response.text[:300]}")
    answered = time.perf_counter()
    tries = 1
    while vendor.fhir(token, kommune, "Patient/1", "GET") != 403:
        tries += 1
        if time.perf_counter() - started > DEADLINE:
            raise SystemExit("revocation: no 403 within the deadline")
    done = time.perf_counter()
    REVOCATION_PARTS.setdefault("revoke_api", []).append((answered - started) * 1000)
    REVOCATION_PARTS.setdefault("until_403", []).append((done - answered) * 1000)
    REVOCATION_PARTS.setdefault("tries", []).append(tries)
    return done - started


def revoke_as_frozen(
    vendor: Vendor, operator_token: str, grants: list[Grant], client_id: str
) -> list[float]:
    """Seconds from `revoke` to the gateway's 403 while the authorization server is frozen
    (SIGSTOP: calls to it hang, as a stuck server's would), the client's job waiting on it."""
    pid = int(os.environ.get("BENCH_PROVIDER_PID", "0"))
    if not pid or not grants:
        return []
    token = vendor.token(client_id)  # issued before the freeze
    times = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for grant in grants:
            kommune = grant.kommune.orgnr
            started = time.perf_counter()
            response = vendor.api(operator_token, "POST", f"/api/v1/grants/{grant.pk}/revoke/", {})
            if response.status_code != 200:
                raise SystemExit(f"revoke answered {response.status_code}: {response.text[:300]}")
            while vendor.fhir(token, kommune, "Patient/1", "GET") != 403:
                if time.perf_counter() - started > DEADLINE:
                    raise SystemExit("revocation with the server frozen: no 403 in time")
            times.append(time.perf_counter() - started)
    finally:
        os.kill(pid, signal.SIGCONT)
    return times


def bulk(
    vendor: Vendor, api_token: str, client: OAuthClient, kommuner: list[Organisation]
) -> float:
    """Seconds until all grants of one order for two services in every kommune are active."""
    started = time.perf_counter()
    response = vendor.api(
        api_token,
        "POST",
        "/api/v1/access-requests/",
        {
            "client": str(client.pk),
            "kommuner": [k.orgnr for k in kommuner],
            "items": [
                {"service": "patient", "access": "read"},
                {"service": "observation", "access": "write"},
            ],
        },
    )
    if response.status_code != 201:
        raise SystemExit(f"bulk order answered {response.status_code}: {response.text[:300]}")
    wanted = 2 * len(kommuner)
    while Grant.objects.filter(client=client, status=GrantStatus.ACTIVE).count() < wanted:
        if time.perf_counter() - started > 300:
            raise SystemExit("bulk onboarding did not finish within 300 s")
        time.sleep(0.05)
    return time.perf_counter() - started


#: Rounds of `at_once` orders fired together by `orders_at_once`.
AT_ONCE_ROUNDS = 3


def orders_at_once(
    vendor: Vendor, api_token: str, client: OAuthClient, kommuner: list[str], at_once: int
) -> tuple[list[float], dict[str, int]]:
    """Seconds of each order API call when ``at_once`` orders of one client, each for another
    kommune, are sent at the same moment (a barrier), ``AT_ONCE_ROUNDS`` times: the orders
    alone, without the onboarding's polling of the gateway beside them (issue 14's figure); and
    what the database's sessions waited for meanwhile (``WaitSampler``)."""
    times: list[float] = []
    barrier = threading.Barrier(at_once)

    def one(kommune: str) -> float:
        barrier.wait()
        started = time.perf_counter()
        response = vendor.order(api_token, client, kommune, "patient", "read")
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise SystemExit(f"order at once: {response.status_code} {response.text[:300]}")
        return elapsed

    sampler = WaitSampler()
    with ThreadPoolExecutor(at_once) as pool, sampler:
        for round_ in range(AT_ONCE_ROUNDS):
            chosen = [kommuner[(round_ * at_once + i) % len(kommuner)] for i in range(at_once)]
            times += list(pool.map(one, chosen))
    return times, sampler.waits


class WaitSampler:
    """What the database's sessions wait for while the block runs: every 20 ms, each active
    session of this database counted by its wait (a lock's kind, or I/O, or none: on the
    processor) and the table its statement reads first. Where 20 orders' time goes."""

    def __init__(self) -> None:
        self.waits: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with connection.cursor() as cursor:
                while not self._stop.wait(0.02):
                    cursor.execute(
                        "SELECT coalesce(wait_event_type || '/' || wait_event, 'running'),"
                        " substring(query from 'FROM \"?([a-z_]+)') FROM pg_stat_activity"
                        " WHERE datname = current_database() AND state = 'active'"
                        " AND pid <> pg_backend_pid()"
                    )
                    for wait, table in cursor.fetchall():
                        key = f"{wait} {table or '-'}"
                        self.waits[key] = self.waits.get(key, 0) + 1
        finally:
            connection.close()


def push_cost(samples: int) -> tuple[list[float], list[float]]:
    """Seconds of each of ``samples`` grants pushed to the gateway (``upsert``), and of each
    removed.

    Each kind is timed in its own pass: a removal walks the whole map in HAProxy 2.6, and timed
    between the additions it would leave them a cold cache."""
    gw = gateway()
    entries = [
        Entry("production", f"push-{i}", "000000000", "patient", "read") for i in range(samples)
    ]
    added: list[float] = []
    removed: list[float] = []
    for timings, push in ((added, gw.upsert), (removed, gw.remove)):
        for entry in entries:
            started = time.perf_counter()
            push(entry)
            timings.append(time.perf_counter() - started)
    return added, removed


#: The gateway is loaded with 1,000 entries and then all of them this many times, the pushes
#: timed at each size every time: this machine's speed drifts from minute to minute, and one
#: pass at each size compared two moments as much as two sizes.
PUSH_ROUNDS = 3


def push_costs(samples: int, total: int, seeding: dict[str, float]) -> dict[str, float]:
    """Median milliseconds of one push and one removal with 1,000 and with all entries; the map
    holds all entries at the end."""
    timings: dict[str, list[float]] = {}
    for round_ in range(PUSH_ROUNDS):
        for size, limit in (("1k", min(1000, total)), ("30k", None)):
            if round_ == 0:
                step = "gateway_1k" if limit is not None else "gateway_all"
                seed.timed(step, seeding, seed.gateway_entries, limit=limit)
            else:
                seed.gateway_entries(limit=limit)
            added, removed = push_cost(samples)
            timings.setdefault(f"push_one_{size}_ms", []).extend(added)
            timings.setdefault(f"push_remove_{size}_ms", []).extend(removed)
    return {key: statistics.median(values) * 1000 for key, values in timings.items()}


def api_latency(world: seed.World, samples: int) -> dict[str, dict[str, float]]:
    """p50/p95 (ms) and queries per request of the main lists and pages, in-process."""
    # The harness's own heap (seeding left large object graphs) must not put its garbage
    # collections into the requests' timings.
    gc.collect()
    gc.freeze()
    _in_process()
    k0 = world.kommuner[0].orgnr
    cases = [
        (world.auditor, "/api/v1/grants/"),
        (world.auditor, "/api/v1/access-requests/"),
        (world.auditor, "/api/v1/clients/"),
        (world.auditor, "/api/v1/organizations/"),
        (world.auditor, "/api/v1/memberships/"),
        (world.auditor, "/api/v1/instructions/"),
        (world.auditor, "/api/v1/delegations/"),
        (world.auditor, "/api/v1/audit-events/"),
        (world.auditor, "/api/v1/provisioning-jobs/"),
        (world.kommune_admin, f"/api/v1/grants/?kommune={k0}"),
        (world.kommune_admin, "/api/v1/access-requests/"),
        (world.vendor_admin, "/api/v1/grants/"),
        (world.vendor_admin, "/api/v1/clients/"),
        (world.kommune_admin, "/"),
        (world.kommune_admin, "/services/"),
    ]
    results = {}
    for user, path in cases:
        client = Client(HTTP_ACCEPT="application/json")
        client.force_login(user)
        client.get(path)  # warm
        times, queries = [], 0
        for _ in range(samples):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}")
            queries = max(queries, len(captured.captured_queries))
        label = f"{user.username.split('@')[0]} {path}"
        results[label] = {**summary(times), "queries": queries}
    return results


def _in_process() -> None:
    """Django's test environment for the in-process figures (the test client), set up once."""
    if getattr(settings, "_bench_in_process", False):
        return
    setup_test_environment()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings._bench_in_process = True


def _menu_pages(world: seed.World) -> list[tuple[Any, str]]:
    """Every page of the menu of each kind of organisation, as the role that reads it."""
    from django.urls import reverse

    from portal.navigation import MENU

    readers = [
        (world.kommuner[0], world.kommune_admin),
        (world.bench_vendor, world.vendor_admin),
        (world.nhn, world.auditor),
    ]
    return [
        (user, reverse(name, args=[organisation.orgnr]))
        for organisation, user in readers
        for _, name, _ in MENU[organisation.kind]
    ]


def page_queries(world: seed.World) -> dict[str, int]:
    """Queries per menu page, to compare at two sizes of the data (constant means equal)."""
    _in_process()
    counts = {}
    for user, path in _menu_pages(world):
        client = Client()
        client.force_login(user)
        client.get(path)  # warm: the session and caches, as on any later visit
        # But not the national overview's minute: its queries are counted too.
        cache.delete(NATIONAL_FIGURES_KEY.format(months=6, interval="week"))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        counts[f"{user.username.split('@')[0]} {path}"] = len(captured.captured_queries)
    return counts


def page_latency(world: seed.World, samples: int) -> dict[str, dict[str, float]]:
    """p50/p95 (ms) and queries of every menu page of a kommune, a vendor and NHN, in-process."""
    gc.collect()
    gc.freeze()
    _in_process()
    results = {}
    for user, path in _menu_pages(world):
        client = Client()
        client.force_login(user)
        client.get(path)
        times, queries = [], 0
        for _ in range(samples):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}")
            queries = max(queries, len(captured.captured_queries))
        results[f"{user.username.split('@')[0]} {path}"] = {**summary(times), "queries": queries}
    return results


def national_overview_read(samples: int) -> dict[str, float]:
    """p50/p95 (ms) of reading NHN's national overview with nothing in the cache, in-process."""
    times = []
    for _ in range(samples):
        cache.delete(NATIONAL_FIGURES_KEY.format(months=6, interval="week"))
        started = time.perf_counter()
        national_figures(months=6, interval="week")
        times.append((time.perf_counter() - started) * 1000)
    return summary(times)


def run(scale: Scale, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public = key.public_key().public_numbers()

    def b64(n: int) -> str:
        import base64

        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    public_jwk = {
        "kty": "RSA",
        "kid": "bench-1",
        "alg": "RS256",
        "use": "sig",
        "n": b64(public.n),
        "e": b64(public.e),
    }
    seeding: dict[str, float] = {}
    world = seed.timed("organisations_and_grants", seeding, seed.organisations, scale, public_jwk)
    seed.timed("grant_periods", seeding, access_history.seed_periods)
    seed.timed("registrations", seeding, seed.registrations)
    total_entries = len(desired_entries())
    push = push_costs(scale.push_samples, total_entries, seeding)
    # The trail is seeded in two parts, its export measured after each (a tenth, then all of
    # it), then its chain verified; the seeding's share is timed as before.
    seeded_s: list[float] = []

    def audit_part(count: int, skip: int) -> None:
        started = time.perf_counter()
        seed.audit_trail(count, world.kommuner, skip=skip)
        seeded_s.append(time.perf_counter() - started)

    audit = audit_export.audit_measures(
        events=scale.audit_events,
        seed_part=audit_part,
        username=world.auditor.username,
        warm_up_kommune=world.kommuner[0].orgnr,
    )
    seeding["audit_events"] = round(sum(seeded_s), 2)
    seed.timed("analyze", seeding, seed.analyze)
    seeding["total"] = round(sum(seeding.values()), 2)
    print(f"seeded in {seeding['total']} s: {seeding}", flush=True)

    jwks = {"keys": [public_jwk]}
    onboarding_client, bulk_client, load_client, at_once_client = (
        services.client_register(
            vendor=world.bench_vendor,
            product=world.bench_product,
            name=name,
            environment="production",
            jwks=jwks,
            actor=world.vendor_admin,
        )
        for name in ("Bench onboarding", "Bench bulk", "Bench load", "Bench at once")
    )
    pipeline, operations = (
        services.automation_client_register(
            organisation=organisation, name=name, role=role, jwks=jwks, actor=actor
        )
        for organisation, name, role, actor in (
            (world.bench_vendor, "Bench pipeline", Role.VENDOR_ADMIN, world.vendor_admin),
            (world.nhn, "Bench operations", Role.NHN_OPERATOR, world.operator),
        )
    )
    onboarding_id, _, _, _, pipeline_id, operations_id = wait_registered(
        onboarding_client, bulk_client, load_client, at_once_client, pipeline, operations
    )
    vendor = Vendor(key, "bench-1")
    api_token, operator_token = vendor.token(pipeline_id), vendor.token(operations_id)
    floor = Floor(vendor, public_jwk)

    kommuner = [k.orgnr for k in world.kommuner]
    onboarding, floors = [], []
    for i in range(scale.onboardings):
        kommune = kommuner[i % len(kommuner)]
        onboarding.append(
            onboard(
                ONBOARDING_PARTS,
                vendor,
                api_token,
                onboarding_client,
                onboarding_id,
                kommune,
                "patient",
                "read",
            )
        )
        floors.append(floor.once(i, kommune))

    #: The onboarding 20 at once: its order API call and the wait until the gateway let it in.
    concurrent_parts: dict[str, list[float]] = {}

    def concurrent(i: int) -> float:
        kommune = kommuner[i % len(kommuner)]
        return onboard(
            concurrent_parts,
            vendor,
            api_token,
            onboarding_client,
            onboarding_id,
            kommune,
            "observation",
            "write",
        )

    job_ms = [
        (finished - created).total_seconds() * 1000
        for created, finished in ProvisioningJob.objects.filter(
            client=onboarding_client, status="done", finished_at__isnull=False
        ).values_list("created_at", "finished_at")
        if finished is not None
    ]
    ONBOARDING_PARTS["job_commit_to_done"] = job_ms

    with ThreadPoolExecutor(scale.at_once) as pool:
        concurrent_times = list(pool.map(concurrent, range(scale.concurrent)))
    at_once, at_once_waits = orders_at_once(
        vendor, api_token, at_once_client, kommuner, scale.at_once
    )

    grants = list(
        Grant.objects.filter(
            client=onboarding_client, service__code="patient", status=GrantStatus.ACTIVE
        )
        .select_related("kommune")
        .order_by("created_at")[: scale.revocations]
    )
    revocations = [revoke(vendor, operator_token, g, onboarding_id) for g in grants]
    left = list(
        Grant.objects.filter(
            client=onboarding_client, service__code="patient", status=GrantStatus.ACTIVE
        )
        .select_related("kommune")
        .order_by("created_at")[: scale.revocations]
    )
    revocations_as_down = revoke_as_frozen(vendor, operator_token, left, onboarding_id)

    # Queries per page with every kind of row present (orders, grants active and revoked, jobs),
    # to compare with the same pages after the bulk order adds hundreds more.
    queries_before_bulk = page_queries(world)
    bulk_seconds = bulk(vendor, api_token, bulk_client, world.kommuner[: scale.bulk_kommuner])

    started = time.perf_counter()
    report = reconcile()
    reconcile_seconds = time.perf_counter() - started
    api = api_latency(world, scale.api_samples)
    pages = page_latency(world, scale.api_samples)
    overview_read = national_overview_read(scale.api_samples)
    _in_process()
    history = access_history.measure(world, scale.api_samples * 5)
    # The same pages after the bulk order's grants: as many queries as before it.
    growth = {
        label: count - queries_before_bulk[label]
        for label, count in page_queries(world).items()
        if count != queries_before_bulk[label]
    }

    onboarding_s = summary(onboarding)
    floor_s = summary(floors)
    # Load, before the data-access rows below: people's pages, systems' API reads and orders.
    menu: dict[Any, list[str]] = {}
    for user, path in _menu_pages(world):
        menu.setdefault(user, []).append(path)
    load_token = vendor.token(pipeline_id)  # fresh: the tokens above may be near their end
    load_figures = load.run(
        users=scale.load_users,
        seconds=scale.load_seconds,
        web=vendor.web,
        people=list(menu.items()),
        systems=[
            (
                load_token,
                [
                    "/api/v1/grants/",
                    "/api/v1/clients/",
                    "/api/v1/access-requests/",
                    f"/api/v1/grants/?client={load_client.pk}",
                ],
            ),
            (
                vendor.token(operations_id),
                [
                    "/api/v1/grants/",
                    f"/api/v1/grants/?kommune={kommuner[1]}",
                    "/api/v1/audit-events/",
                    "/api/v1/provisioning-jobs/",
                    "/api/v1/organizations/",
                ],
            ),
        ],
        order_token=load_token,
        order_client=str(load_client.pk),
        kommuner=kommuner,
        items=[("patient", "read"), ("observation", "write")],
        workdir=Path(settings.VAR_DIR) / "load",
    )
    # Last: the million rows it loads (and then removes) must not weigh on the figures above.
    kommune_page = f"/o/{world.kommuner[0].orgnr}/data-access/"
    nhn_page = f"/o/{world.nhn.orgnr}/data-access/"
    data_access = bench_data_access.run(
        scale,
        readers=[
            ("kommune page, 30 days", world.kommune_admin, kommune_page),
            ("kommune API, 30 days", world.kommune_admin, "/api/v1/data-access/"),
            ("NHN page, today", world.auditor, nhn_page),
            ("NHN page, 30 days", world.auditor, f"{nhn_page}?days=30"),
            (
                "NHN API, one kommune, 30 days",
                world.auditor,
                f"/api/v1/data-access/?kommune={world.kommuner[0].orgnr}",
            ),
        ],
        samples=scale.api_samples,
    )
    return {
        "scale": scale.name,
        "seeding_s": seeding,
        "counts": {
            "kommuner": len(world.kommuner),
            "clients": OAuthClient.objects.count(),
            "grants": Grant.objects.count(),
            "grant_periods": GrantPeriod.objects.count(),
            "gateway_entries_seeded": total_entries,
            "audit_events": scale.audit_events,
        },
        "onboarding_p50_s": onboarding_s["p50"],
        "onboarding_p95_s": onboarding_s["p95"],
        "onboarding_max_s": onboarding_s["max"],
        "onboarding_concurrent_p50_s": summary(concurrent_times)["p50"],
        "onboarding_concurrent_p95_s": summary(concurrent_times)["p95"],
        # The order API call alone, `at_once` of them at a time for one client (issue 14).
        "orders_20_at_once_p50_s": summary(at_once)["p50"],
        "orders_20_at_once_p95_s": summary(at_once)["p95"],
        "orders_20_at_once_samples": len(at_once),
        "orders_20_at_once_waits": dict(sorted(at_once_waits.items(), key=lambda kv: -kv[1])),
        "onboarding_concurrent_parts_p50_ms": {
            k: percentile(v, 0.5) for k, v in concurrent_parts.items()
        },
        "floor_p50_s": floor_s["p50"],
        "floor_p95_s": floor_s["p95"],
        "floor_parts_p50_ms": {k: percentile(v, 0.5) for k, v in floor.parts.items()},
        "onboarding_parts_p50_ms": {k: percentile(v, 0.5) for k, v in ONBOARDING_PARTS.items()},
        "revocation_parts_p50_ms": {k: percentile(v, 0.5) for k, v in REVOCATION_PARTS.items()},
        "overhead_ratio": onboarding_s["p50"] / floor_s["p50"],
        "revocation_p50_s": summary(revocations)["p50"],
        "revocation_p95_s": summary(revocations)["p95"],
        "revocation_as_down_p95_s": (
            summary(revocations_as_down)["p95"] if revocations_as_down else None
        ),
        "revocation_as_down_samples": len(revocations_as_down),
        "bulk_714_s": bulk_seconds,
        "bulk_grants": 2 * min(scale.bulk_kommuner, len(world.kommuner)),
        "api_p95_ms": max(v["p95"] for v in api.values()),
        "max_queries_per_request": max(int(v["queries"]) for v in api.values()),
        "api": api,
        "pages_p95_ms": max(v["p95"] for v in pages.values()),
        "page_query_growth": max((abs(v) for v in growth.values()), default=0),
        "page_query_growth_by_page": growth,
        "pages": pages,
        # The national overview's figures as read once a minute (the pages above show them
        # from the cache within the minute): what its first look each minute costs.
        "national_overview_read_p95_ms": overview_read["p95"],
        **history,
        "reconcile_30k_s": reconcile_seconds,
        "reconcile_heals": len(report.heals),
        "reconcile_errors": report.errors[:5],
        **push,
        **audit,
        **data_access,
        **load_figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True, help="the vendors' private key (PEM)")
    args = parser.parse_args()
    key = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    results = run(SCALES[args.scale], key)
    args.output.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
