"""`make chaos`'s side inside the stack (chaos/run.py starts the stack, then this, in the same
process once Django is set up): it seeds the world, orders grants through the web process and
revokes a share of them, probes the gateways for revoked grants all along, and reads the state
the checks (chaos/checks.py) judge."""

from __future__ import annotations

import contextlib
import datetime
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from bench import seed
from bench.driver import Vendor, wait_registered
from bench.scale import Scale
from chaos import checks
from orders import services
from orders.models import Grant, GrantStatus, ProvisioningJob
from provisioning.authserver import AuthServerClient
from provisioning.reconcile import desired_entries, resource_map
from provisioning.runner import gateway
from tenants.models import OAuthClient, Organisation, Role

#: What a VFT system may be granted (bench/seed.py): each wave orders one of them.
PAIRS = seed.ALLOWED["VFT"]
KID = "chaos-1"


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    import base64

    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "kty": "RSA",
        "kid": KID,
        "alg": "RS256",
        "use": "sig",
        "n": b64(numbers.n),
        "e": b64(numbers.e),
    }


@dataclass
class Target:
    """A revoked grant the prober sends requests for, with a token of its client."""

    grant: str
    client_id: str
    path: str
    method: str


@dataclass
class Prober:
    """Throughout the run, requests through every gateway with valid tokens of clients whose
    grants were revoked: every 2xx is kept (with when it was sent), the rest counted."""

    vendor: Vendor
    gateways: dict[str, str]  # name: base URL
    targets: list[Target] = field(default_factory=list)
    passes: list[checks.Probe] = field(default_factory=list)
    sent: int = 0
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: Targets probed per round (the newest first, then a rotating share of the older ones).
    per_round: int = 12

    def add(self, target: Target) -> None:
        with self.lock:
            self.targets.append(target)

    def _token(self, client_id: str) -> str | None:
        fetched = self.tokens.get(client_id)
        if fetched is None or time.monotonic() - fetched[0] > 60:
            # The authorization server down: the old token is still valid.
            with contextlib.suppress(requests.RequestException):
                self.tokens[client_id] = (time.monotonic(), self.vendor.token(client_id))
        fetched = self.tokens.get(client_id)
        return fetched[1] if fetched else None

    def run(self) -> None:
        http = requests.Session()
        rotation = itertools.count()
        while not self.stopping.is_set():
            with self.lock:
                targets = list(self.targets)
            if not targets:
                self.stopping.wait(0.2)
                continue
            newest = targets[-self.per_round // 2 :]
            start = next(rotation) * (self.per_round // 2)
            older = [targets[(start + i) % len(targets)] for i in range(self.per_round // 2)]
            for target in {t.grant: t for t in [*newest, *older]}.values():
                token = self._token(target.client_id)
                if token is None:
                    continue
                for name, base in self.gateways.items():
                    sent_at = timezone.now()
                    try:
                        response = http.request(
                            target.method,
                            f"{base}{target.path}",
                            headers={"Authorization": f"Bearer {token}"},
                            timeout=5,
                        )
                    except requests.RequestException:
                        continue  # the gateway is restarting
                    self.sent += 1
                    if 200 <= response.status_code < 300:
                        self.passes.append(
                            checks.Probe(target.grant, name, sent_at, response.status_code)
                        )
            self.stopping.wait(0.05)


@dataclass
class Order:
    """What one wave ordered and revoked, and how the web process answered."""

    grants: dict[str, str] = field(default_factory=dict)  # id: the status it must end in
    revoke_answered: dict[str, datetime.datetime] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class World:
    def __init__(self, key: rsa.RSAPrivateKey, clients: int, web: str) -> None:
        self.key = key
        jwk = public_jwk(key)
        scale = Scale("chaos", 357, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        self.world = seed.organisations(scale, jwk)
        jwks = {"keys": [jwk]}
        self.clients = [
            services.client_register(
                vendor=self.world.bench_vendor,
                product=self.world.bench_product,
                name=f"Chaos {i}",
                environment="production",
                jwks=jwks,
                actor=self.world.vendor_admin,
            )
            for i in range(clients)
        ]
        pipeline, operations = (
            services.automation_client_register(
                organisation=organisation, name=name, role=role, jwks=jwks, actor=actor
            )
            for organisation, name, role, actor in (
                (
                    self.world.bench_vendor,
                    "Chaos pipeline",
                    Role.VENDOR_ADMIN,
                    self.world.vendor_admin,
                ),
                (self.world.nhn, "Chaos operations", Role.NHN_OPERATOR, self.world.operator),
            )
        )
        ids = wait_registered(*self.clients, pipeline, operations)
        self.client_ids = dict(zip((str(c.pk) for c in self.clients), ids[:-2], strict=True))
        self.pipeline_id, self.operations_id = ids[-2:]
        self.vendor = Vendor(key, KID)
        self.vendor.web = web
        self.expected: dict[str, str] = {}
        self.revoke_answered: dict[str, datetime.datetime] = {}
        self.pipeline_token = ""
        self.operations_token = ""
        self.types = {code: name for name, code in resource_map().items()}

    def _ordered(
        self, client: OAuthClient, kommuner: list[str], code: str, access: str
    ) -> list[Grant]:
        return list(
            Grant.objects.filter(
                client=client, kommune__orgnr__in=kommuner, service__code=code, access=access
            ).select_related("kommune", "service")
        )

    def order(self, wave: int, block: int, start: int, stop: int) -> Order:
        """Order for each client the grants of kommuner ``start`` to ``stop`` of this wave's
        block of ``block`` kommuner, for this wave's service; ``start`` 0 fetches new tokens
        (the later orders may be placed while the authorization server is down)."""
        code, access = PAIRS[wave % len(PAIRS)]
        all_kommuner = list(
            Organisation.objects.filter(kind=Organisation.Kind.KOMMUNE)
            .order_by("orgnr")
            .values_list("orgnr", flat=True)
        )
        offset = (wave // len(PAIRS)) * block
        kommuner = all_kommuner[offset + start : offset + stop]
        if start == 0:
            self.pipeline_token = self.vendor.token(self.pipeline_id)
            self.operations_token = self.vendor.token(self.operations_id)
        token = self.pipeline_token
        result = Order()

        def one(client: OAuthClient) -> None:
            body = {
                "client": str(client.pk),
                "kommuner": kommuner,
                "items": [{"service": code, "access": access}],
            }
            for _ in range(20):  # a vendor's system tries again after an error
                try:
                    response = self.vendor.api(token, "POST", "/api/v1/access-requests/", body)
                except requests.RequestException as exc:
                    result.errors.append(f"order: {type(exc).__name__}")
                    time.sleep(1)
                    continue
                if response.status_code == 201:
                    return
                result.errors.append(f"order answered {response.status_code}")
                time.sleep(1)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, self.clients))
        for client in self.clients:
            for grant in self._ordered(client, kommuner, code, access):
                result.grants[str(grant.pk)] = GrantStatus.ACTIVE
        self.expected.update(result.grants)
        return result

    def revoke(self, order: Order, share: float, prober: Prober, earlier: int = 0) -> None:
        """Revoke ``share`` of the grants ``order`` holds, and ``earlier`` grants of earlier
        waves that are active, through the API as an NHN operator; each one answered goes to
        the prober."""
        ordered = sorted(order.grants)
        chosen = ordered[:: max(1, round(1 / share))] if share else []
        if earlier:
            chosen += [
                str(pk)
                for pk in Grant.objects.filter(
                    pk__in=[
                        g
                        for g, s in self.expected.items()
                        if s == GrantStatus.ACTIVE and g not in order.grants
                    ],
                    status=GrantStatus.ACTIVE,
                ).values_list("pk", flat=True)[:earlier]
            ]
        grants = {
            str(g.pk): g
            for g in Grant.objects.filter(pk__in=chosen).select_related(
                "kommune", "service", "client"
            )
        }
        token = self.operations_token

        def one(grant_id: str) -> None:
            for _ in range(20):
                try:
                    response = self.vendor.api(
                        token, "POST", f"/api/v1/grants/{grant_id}/revoke/", {}
                    )
                except requests.RequestException as exc:
                    order.errors.append(f"revoke: {type(exc).__name__}")
                    time.sleep(1)
                    continue
                if response.status_code in (200, 409):  # 409: it was revoked (an earlier try)
                    order.revoke_answered[grant_id] = timezone.now()
                    return
                order.errors.append(f"revoke answered {response.status_code}")
                time.sleep(1)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, chosen))
        self.revoke_answered.update(order.revoke_answered)
        for grant_id in order.revoke_answered:
            grant = grants[grant_id]
            self.expected[grant_id] = GrantStatus.REVOKED
            order.grants[grant_id] = GrantStatus.REVOKED
            resource = self.types[grant.service.code]
            method = "GET" if grant.access == "read" else "POST"
            path = f"/{grant.kommune.orgnr}/fhir/{resource}" + ("/1" if method == "GET" else "")
            prober.add(Target(grant_id, self.client_ids[str(grant.client_id)], path, method))

    # --- the observed state ----------------------------------------------------------------

    def problems(
        self, audit_earlier: dict[int, str], prober: Prober
    ) -> tuple[list[str], dict[int, str]]:
        """Every check's problems now, and the audit trail read (id: hash)."""
        problems: list[str] = []
        mine = OAuthClient.objects.filter(pk__in=[c.pk for c in self.clients])
        actual = {
            str(pk): status
            for pk, status in Grant.objects.filter(client__in=mine).values_list("pk", "status")
        }
        problems += checks.grant_problems(self.expected, actual)
        problems += self._registrations()
        problems += self._maps()
        events = dict(AuditEvent.objects.order_by("id").values_list("id", "chain_hash"))
        actions: dict[str, set[str]] = {}
        for object_id, action in AuditEvent.objects.filter(
            action__startswith="grant.", object_id__in=list(self.expected)
        ).values_list("object_id", "action"):
            actions.setdefault(object_id, set()).add(action)
        checked = audit_chain_verify()
        broken = None if checked.broken is None else str(checked.broken)
        problems += checks.audit_problems(
            broken=broken, earlier=audit_earlier, now=events, actions=actions, final=self.expected
        )
        closed_at = dict(
            (str(pk), at)
            for pk, at in Grant.objects.filter(
                pk__in=[t.grant for t in prober.targets], status=GrantStatus.REVOKED
            ).values_list("pk", "status_changed_at")
        )
        problems += checks.prober_violations(list(prober.passes), closed_at)
        return problems, events

    def _registrations(self) -> list[str]:
        server = AuthServerClient()
        try:
            listing = server.portal_registrations() or []
        except Exception as exc:  # noqa: BLE001 - a server that does not answer is the problem
            return [f"the authorization server's listing: {type(exc).__name__}"]
        clients = list(
            OAuthClient.objects.filter(removed_at__isnull=True).select_related("registration")
        )
        registered = {
            str(c.pk): (c.registration.server_client_id if hasattr(c, "registration") else "")
            for c in clients
        }
        live = (GrantStatus.ACTIVE, GrantStatus.PROVISIONING)
        scopes: dict[str, set[str]] = {}
        for client, scope in Grant.objects.filter(status__in=live).values_list(
            "client_id", "scope"
        ):
            scopes.setdefault(str(client), set()).add(scope)
        wanted = {
            str(c.pk): frozenset(
                {"tilgang:api"}
                if c.purpose == OAuthClient.Purpose.PORTAL_API
                else scopes.get(str(c.pk), set())
            )
            for c in clients
        }
        listed = []
        by_id = {str(c.pk): c for c in clients}
        for item in listing:
            held: frozenset[str] = frozenset()
            registration = getattr(by_id.get(item.software_id), "registration", None)
            if registration is not None and registration.server_client_id == item.client_id:
                try:
                    body = server.read(
                        registration.registration_client_uri,
                        registration.registration_access_token,
                    )
                except Exception as exc:  # noqa: BLE001
                    return [f"reading registration {item.client_id}: {type(exc).__name__}"]
                held = frozenset(body.get("scope", "").split())
            listed.append(checks.Listed(item.client_id, item.software_id, held))
        return checks.registration_problems(registered, wanted, listed)

    def _maps(self) -> list[str]:
        desired = {entry.key: entry.value for entry in desired_entries()}
        resources = resource_map()
        problems = []
        for gw in gateway():
            name = gw.config.name
            try:
                problems += checks.map_problems(f"{name} runtime", desired, gw.values())
                problems += checks.map_problems(f"{name} resources", resources, gw.resources())
            except Exception as exc:  # noqa: BLE001 - a gateway that does not answer
                problems.append(f"{name}: runtime API {type(exc).__name__}")
            try:
                files = checks.map_file_entries(
                    gw.config.grants_map.read_text(), gw.config.revoked_map.read_text()
                )
            except OSError as exc:
                problems.append(f"{name}: map files {exc}")
                continue
            problems += checks.map_problems(f"{name} map files", desired, files)
        return problems

    def in_flight(self) -> int:
        """The run's grants not yet where they will end: pending, provisioning or revoking."""
        moving = (GrantStatus.PENDING, GrantStatus.PROVISIONING, GrantStatus.REVOKING)
        return Grant.objects.filter(client__in=self.clients, status__in=moving).count()

    def wait_running(self, timeout: float = 10) -> None:
        """Until a worker runs a job of the run's clients (a moment; or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline
            and not ProvisioningJob.objects.filter(
                client__in=self.clients, status=ProvisioningJob.Status.RUNNING
            ).exists()
        ):
            time.sleep(0.02)

    def backend_pid(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])


def converge(
    check: Callable[[], list[str]], *, since: float, limit: float
) -> tuple[float | None, list[str]]:
    """Poll ``check`` until it finds nothing wrong or ``limit`` seconds after ``since``
    (monotonic) have passed; the seconds from ``since`` to the first clean read (None: never),
    and the last problems found."""
    problems: list[str] = []
    while True:
        problems = check()
        now = time.monotonic()
        if not problems:
            return now - since, []
        if now - since > limit:
            return None, problems
        time.sleep(0.5)
