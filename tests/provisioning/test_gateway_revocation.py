"""A revocation holds through a reload, a restart and the reconciler's swap (issue 11, review
round 2: M4 and S1), for real: HAProxy 2.6 with the rendered configuration and the adapter.

The reconciler writes the map files, then reloads; a revocation that lands in between went only
into the running worker's memory, and the new worker loaded the grants file that still held it.
Its add-back after a swap took a key revoked a moment earlier for one the swap had lost, and
opened it again.
"""

# The fixtures are imported, so every test naming one as a parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from provisioning import reconcile as reconcile_module
from provisioning.gateway import Entry
from tests.provisioning.gateway_fixtures import (  # noqa: F401 - gateway, rsa_signing_key: fixtures
    RESOURCES,
    Gateway,
    gateway,
    rsa_signing_key,
)
from tests.provisioning.test_gateway_fhir import BASE, CLIENT, send, token


def status(gw: Gateway, client_id: str = CLIENT, path: str = "Patient/1") -> int:
    return send(gw, "GET", f"{BASE}/{path}", token(gw, client_id)).status


def revoked_file(gw: Gateway) -> set[str]:
    lines = gw.config.revoked_map.read_text().splitlines()
    return {line.split(" ", 1)[0] for line in lines if line.strip()}


# -- M4: the revoked map file ----------------------------------------------------------------


def test_a_removal_after_the_map_files_were_written_holds_through_a_reload(
    gateway: Gateway,
) -> None:
    granted = gateway.grant(CLIENT)
    assert gateway.adapter.write_map_files([granted], RESOURCES)  # the reconciler, at t0
    assert status(gateway) == 200

    gateway.adapter.remove(granted)  # the revocation's gateway_close, before the reload
    gateway.adapter.reload()

    assert status(gateway) == 403
    assert granted.key in gateway.adapter.revoked()
    gateway.restart()
    assert status(gateway) == 403


def test_a_removal_of_a_key_the_running_map_lacks_holds_once_the_file_is_loaded(
    gateway: Gateway,
) -> None:
    """The grants file holds a grant the running worker has not been told of yet (the worker
    activates before it opens): its revocation must not depend on the order of the two."""
    granted = Entry("production", CLIENT, "123456789", "patient", "read")
    gateway.adapter.write_map_files([granted], RESOURCES)

    gateway.adapter.remove(granted)
    gateway.adapter.reload()

    assert status(gateway) == 403


def test_the_map_files_drop_only_the_removals_the_new_grants_file_no_longer_holds(
    gateway: Gateway,
) -> None:
    kept = gateway.grant(CLIENT)
    gone = gateway.grant("other-client")
    gateway.adapter.write_map_files([kept, gone], RESOURCES)
    gateway.adapter.remove(kept)
    gateway.adapter.remove(gone)
    assert revoked_file(gateway) == {kept.key, gone.key}

    # Desired state read before the revocation of `kept`, after the one of `gone`.
    gateway.adapter.write_map_files([kept], RESOURCES)

    assert revoked_file(gateway) == {kept.key}
    gateway.adapter.reload()
    assert status(gateway) == 403
    gateway.adapter.write_map_files([], RESOURCES)
    assert revoked_file(gateway) == set()


def test_a_grant_opened_again_after_its_removal_passes_after_a_reload(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)
    gateway.adapter.write_map_files([granted], RESOURCES)
    gateway.adapter.remove(granted)

    gateway.adapter.upsert(granted)  # granted again
    gateway.adapter.reload()

    assert status(gateway) == 200
    assert revoked_file(gateway) == set()


# -- S1: the reconciler's add-back never reopens a revoked key -------------------------------


@pytest.mark.parametrize("in_swapped_map", [True, False], ids=["kept by the swap", "lost by it"])
def test_the_add_back_after_a_swap_never_reopens_a_key_revoked_after_its_read(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, in_swapped_map: bool
) -> None:
    """The add-back reads the database, then looks for what the swap lost. A revocation that
    commits in between closes its key (the revoked map) before the add-back compares: the key
    must stay closed at every step, not be re-added and closed again afterwards."""
    granted = Entry("production", CLIENT, "123456789", "patient", "read")
    if in_swapped_map:
        gateway.adapter.upsert(granted)
    seen: list[int] = []
    reads = 0

    def desired_entries() -> list[Entry]:
        nonlocal reads
        reads += 1
        if reads == 1:
            # Read while the grant was still active; its revocation commits and closes now.
            gateway.adapter.remove(granted)
            return [granted]
        seen.append(status(gateway))
        return []

    monkeypatch.setattr(reconcile_module, "desired_entries", desired_entries)

    reconcile_module._add_back_what_the_swap_lost(gateway.adapter)

    seen.append(status(gateway))
    assert set(seen) == {403}  # at least the final look
