"""The reconciler's reload never reopens a grant revoked just before it (issue 11, review round
2, M4), against the real stack: PostgreSQL, the broker, a real Celery worker, the real
oidc-provider and a real HAProxy."""

from __future__ import annotations

from typing import Any

import pytest

from orders import services
from provisioning.gateway import Entry, HAProxyGateway
from provisioning.reconcile import reconcile
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, fhir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_grant_revoked_between_the_map_file_write_and_the_reload_stays_closed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconciler writes the map files (the grant still active), the grant is revoked and
    closed at the running worker, then the reconciler reloads: the new worker must start
    with it closed, not wait for the swap later in the run."""
    stack.start_worker()
    stack.start_close_worker()
    vendor = Vendor()
    [grant] = vendor.order("patient.read")
    token = vendor.token_once_active(stack, grant)
    path = fhir(vendor.kommune, "Patient/1")
    assert stack.call(path, token).status_code == 200
    # Anything that makes the configuration differ makes the reconciler rewrite and reload it.
    config_file = stack.gateway.config.config_file
    config_file.write_text(config_file.read_text() + "# outdated\n")

    real_write = HAProxyGateway.write_map_files
    real_reload = HAProxyGateway.reload
    after_reload: list[int] = []

    def write_map_files(self: HAProxyGateway, entries: Any, resources: dict[str, str]) -> bool:
        listed: list[Entry] = list(entries)
        wrote = real_write(self, listed, resources)
        if not after_reload and any("|patient|" in entry.key for entry in listed):
            # Between the write and the reload: the revocation commits, its task closes.
            services.grant_revoke(grant=grant, actor=vendor.kommune_admin)
            wait_for(
                lambda: stack.call(path, token).status_code == 403,
                timeout=DEADLINE,
                what="the revocation closes the running worker",
            )
        return wrote

    def reload(self: HAProxyGateway, *, wait: float = 10.0) -> None:
        real_reload(self, wait=wait)
        after_reload.append(stack.call(path, token).status_code)

    monkeypatch.setattr(HAProxyGateway, "write_map_files", write_map_files)
    monkeypatch.setattr(HAProxyGateway, "reload", reload)

    report = reconcile()

    assert "reconcile.gateway_keys" in report.heals
    assert after_reload == [403]
    assert stack.call(path, token).status_code == 403
    stack.stop_haproxy()
    stack.start_haproxy()  # from the files alone
    assert stack.call(path, token).status_code == 403
