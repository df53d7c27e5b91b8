"""The data-access log of the real gateway: HAProxy rendered from the project's template logs
every request, the collector (``manage.py gateway_log_collect``, a process of its own) loads it,
and what the database holds is exactly what was sent, through a restart of the gateway and a
crash of the collector. Tokens come from the real oidc-provider for a provisioned client."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack

import pytest
from django.db.models import Sum

from provisioning.models import AccessLogCursor, DataAccessEntry, GatewayTrafficDay
from provisioning.reconcile import gateway_files_write
from tests.components import PROJECT_DIR, manage, process
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: What the log says of a call: (client_id, kommune, service, access, method, path, status,
#: refused by the gateway).
Call = tuple[str, str, str, str, str, str, int, bool]


class Caller:
    """Calls the gateway and remembers what each call should leave in the log."""

    def __init__(self, stack: Stack, vendor: Vendor, token: str) -> None:
        self.stack, self.vendor, self.token = stack, vendor, token
        self.client_id = vendor.client_id()
        self.sent: Counter[Call] = Counter()

    def call(
        self,
        path: str,
        status: int,
        *,
        token: str | None = "",
        method: str = "GET",
        logged: tuple[str, str, str] = ("", "", ""),
        client_id: str | None = None,
    ) -> None:
        """``logged``: the kommune, service and access the gateway knew when it answered."""
        response = self.stack.call(path, self.token if token == "" else token, method)
        assert response.status_code == status, response.text
        kommune, service, access = logged
        known = self.client_id if client_id is None else client_id
        logged_path = path.split("?", 1)[0]  # the query string is not logged
        self.sent[
            (known, kommune, service, access, method, logged_path, status, status != 200)
        ] += 1

    def a_round(self, n: int) -> None:
        """Calls of every kind: passed, refused by the grant, by the route, by the token."""
        kommune, other = self.vendor.kommune.orgnr, self.vendor.other_kommune.orgnr
        for i in range(n):
            self.call(
                fhir(self.vendor.kommune, f"Patient/{i}"), 200, logged=(kommune, "patient", "read")
            )
        patient = (kommune, "patient", "read")
        self.call(fhir(self.vendor.kommune, "Patient?name=x"), 200, logged=patient)
        self.call(
            fhir(self.vendor.other_kommune, "Patient/1"), 403, logged=(other, "patient", "read")
        )
        self.call(
            fhir(self.vendor.kommune, "Observation/1"), 403, logged=(kommune, "observation", "read")
        )
        self.call(
            fhir(self.vendor.kommune, "Patient"),
            403,
            method="POST",
            logged=(kommune, "patient", "write"),
        )
        self.call(fhir(self.vendor.kommune, "Unknown/1"), 404, logged=(kommune, "", ""))
        # No token, or a forged one: no client_id is logged, the kommune comes from the path.
        self.call(
            fhir(self.vendor.kommune, "Patient/1"),
            401,
            token=None,
            client_id="",
            logged=(kommune, "", ""),
        )
        self.call(
            fhir(self.vendor.kommune, "Patient/1"),
            401,
            token=forged(self.token),
            client_id="",
            logged=(kommune, "", ""),
        )


def forged(token: str) -> str:
    """The token with another client_id in its claims and its old signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["client_id"] = "someone-else"
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


def logged() -> Counter[Call]:
    rows = DataAccessEntry.objects.values_list(
        "client_id", "kommune", "service", "access", "method", "path", "status", "refused"
    )
    return Counter(rows)


class Collector:
    """``manage.py gateway_log_collect`` as the Procfile runs it, in small batches (many
    transactions, so a kill is likely to land in the middle of loading)."""

    def __init__(self, stack: Stack, exits: ExitStack) -> None:
        self.stack, self.exits, self.starts = stack, exits, 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        args = [sys.executable, "manage.py", "gateway_log_collect", "--interval", "0.05"]
        args += ["--batch-bytes", "1500"]
        log = self.stack.tmp / f"collector-{self.starts}.log"
        self.proc = self.exits.enter_context(
            process(args, log=log, env=self.stack.env, cwd=PROJECT_DIR)
        )

    def kill(self) -> None:
        """SIGKILL, as a crash: whatever batch was under way is not committed."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_the_log_holds_every_call_of_the_real_gateway_once_across_restarts(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    caller = Caller(stack, vendor, vendor.token_once_active(stack, grant))

    with ExitStack() as exits:
        collector = Collector(stack, exits)
        collector.start()
        caller.a_round(20)
        wait_for(lambda: logged() == caller.sent, timeout=DEADLINE, what="the first calls logged")

        # The gateway restarts: it appends to the same file, the collector goes on.
        assert gateway_files_write()  # what beat does every 5 s: a restart reads the files
        stack.stop_haproxy()
        stack.start_haproxy()
        caller.a_round(20)
        wait_for(lambda: logged() == caller.sent, timeout=DEADLINE, what="calls after the restart")

        # The collector crashes while it loads, and starts again.
        caller.a_round(30)
        wait_for(lambda: DataAccessEntry.objects.count() > 60, timeout=DEADLINE, what="loading")
        collector.kill()
        caller.a_round(10)
        collector.start()
        wait_for(
            lambda: logged() == caller.sent,
            timeout=DEADLINE,
            what="calls after the collector's crash",
        )

    # Nothing more comes: another run finds every line loaded.
    again = manage("gateway_log_collect", "--once", env={**os.environ, **stack.env})
    assert again.returncode == 0, again.stderr
    assert "0 entries loaded" in again.stdout
    assert logged() == caller.sent
    assert sum(caller.sent.values()) == 4 * 7 + 80
    cursor = AccessLogCursor.objects.get(source="gateway")
    assert cursor.offset == stack.gateway.config.access_log.stat().st_size
    assert cursor.lines == sum(caller.sent.values())
    # The national counts per day and service are the log's, once each.
    counted = GatewayTrafficDay.objects.aggregate(calls=Sum("calls"), refused=Sum("refused"))
    assert counted == {"calls": 108, "refused": 4 * 6}


def test_the_access_log_holds_no_token(stack: Stack) -> None:
    stack.start_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)

    assert (
        stack.call(fhir(vendor.kommune, "Patient/1?identifier=12345678901"), token).status_code
        == 200
    )
    assert stack.call(fhir(vendor.other_kommune, "Patient/1"), token).status_code == 403

    access_log = stack.gateway.config.access_log
    wait_for(lambda: access_log.read_text().count("\n") == 2, timeout=DEADLINE, what="logged")
    text = access_log.read_text()
    assert token.split(".")[1] not in text
    assert token.split(".")[2] not in text
    assert "12345678901" not in text  # the query string is not logged
    assert vendor.client_id() in text
