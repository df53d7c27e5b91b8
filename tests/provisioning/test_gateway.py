"""The API gateway, for real: HAProxy 2.6 with the rendered configuration, an echo upstream, and
the adapter the provisioning workers use."""

# The fixtures are imported, so every test naming one as a parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from provisioning.gateway import (
    Entry,
    GatewayConfig,
    GatewayError,
    GatewayUnavailable,
    HAProxyGateway,
    SigningKey,
    signing_keys_from_jwks,
)
from tests.components import wait_until
from tests.keys import ec_public_jwk, rsa_public_jwk
from tests.provisioning.gateway_fixtures import (  # noqa: F401 - gateway, rsa_signing_key: fixtures
    KOMMUNE,
    OTHER_KOMMUNE,
    RESOURCES,
    SCOPES,
    Gateway,
    KeyPair,
    ec_key_pair,
    gateway,
    rsa_key_pair,
    rsa_signing_key,
)

CLIENT = "vendor-client-1"
PATIENTS = f"/{KOMMUNE}/fhir/Patient"


def call(
    gw: Gateway, method: str, path: str, token: str | None = None, **headers: str
) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, gw.url + path, headers=headers, timeout=5)


def entry(client_id: str = CLIENT, **fields: str) -> Entry:
    values = {
        "environment": "production",
        "kommune": KOMMUNE,
        "service": "patient",
        "access": "read",
        **fields,
    }
    return Entry(client_id=client_id, **values)


# -- through, and the X-Tilgang headers ------------------------------------------------------


def test_a_granted_client_reaches_the_upstream_with_the_tilgang_headers(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    response = call(gateway, "GET", f"{PATIENTS}/42?name=x", gateway.mint(CLIENT))

    assert response.status_code == 200
    assert response.json() == {
        "upstream": "echo",
        "client": CLIENT,
        "kommune": KOMMUNE,
        "service": "patient",
        "access": "read",
        "environment": "production",
        "service_codes": "",
        "service_codes_header": None,
        "method": "GET",
        "method_override": None,
        "path": f"{PATIENTS}/42?name=x",
    }


def test_tilgang_headers_sent_by_the_caller_never_reach_the_upstream(gateway: Gateway) -> None:
    gateway.grant(CLIENT)
    forged = {
        "X-Tilgang-Client": "someone-else",
        "x-tilgang-kommune": OTHER_KOMMUNE,
        "X-TILGANG-ACCESS": "write",
        "X-Tilgang-Environment": "test",
    }

    response = call(gateway, "GET", PATIENTS, gateway.mint(CLIENT), **forged)

    assert response.status_code == 200
    body = response.json()
    assert (body["client"], body["kommune"], body["access"], body["environment"]) == (
        CLIENT,
        KOMMUNE,
        "read",
        "production",
    )


# -- 403: the grant is the whole key ---------------------------------------------------------


def test_another_kommune_is_forbidden(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    response = call(gateway, "GET", f"/{OTHER_KOMMUNE}/fhir/Patient", gateway.mint(CLIENT))

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert OTHER_KOMMUNE in response.json()["detail"]


def test_another_service_is_forbidden(gateway: Gateway) -> None:
    gateway.grant(CLIENT, service="patient")

    response = call(gateway, "GET", f"/{KOMMUNE}/fhir/Observation", gateway.mint(CLIENT))

    assert response.status_code == 403


def test_the_other_access_is_forbidden(gateway: Gateway) -> None:
    gateway.grant("reader", access="read")
    gateway.grant("writer", access="write")

    assert call(gateway, "PUT", f"{PATIENTS}/1", gateway.mint("reader")).status_code == 403
    assert call(gateway, "GET", f"{PATIENTS}/1", gateway.mint("writer")).status_code == 403
    assert call(gateway, "PUT", f"{PATIENTS}/1", gateway.mint("writer")).status_code == 200


def test_a_client_of_another_id_is_forbidden(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    assert call(gateway, "GET", PATIENTS, gateway.mint("other-client")).status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", PATIENTS), ("HEAD", PATIENTS), ("POST", f"{PATIENTS}/_search")],
)
def test_get_head_and_post_search_need_read_access(
    gateway: Gateway, method: str, path: str
) -> None:
    gateway.grant("reader", access="read")
    gateway.grant("writer", access="write")

    assert call(gateway, method, path, gateway.mint("reader")).status_code == 200
    assert call(gateway, method, path, gateway.mint("writer")).status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{PATIENTS}/1"),
        ("POST", PATIENTS),
        ("DELETE", f"{PATIENTS}/1"),
        ("PATCH", f"{PATIENTS}/1"),
    ],
)
def test_put_post_and_delete_need_write_access(gateway: Gateway, method: str, path: str) -> None:
    gateway.grant("reader", access="read")
    gateway.grant("writer", access="write")

    response = call(gateway, method, path, gateway.mint("writer"))
    assert response.status_code == 200
    assert response.json()["access"] == "write"
    assert call(gateway, method, path, gateway.mint("reader")).status_code == 403


def test_every_mapped_resource_type_reaches_its_service(gateway: Gateway) -> None:
    for service in RESOURCES.values():
        gateway.grant(CLIENT, service=service)
    token = gateway.mint(CLIENT)

    for resource_type, service in RESOURCES.items():
        response = call(gateway, "GET", f"/{KOMMUNE}/fhir/{resource_type}", token)
        assert response.status_code == 200
        assert response.json()["service"] == service


# -- 401: the token --------------------------------------------------------------------------

INVALID_TOKENS: dict[str, Callable[[Gateway], str]] = {
    "garbage": lambda gw: "not-a-jwt",
    "three garbage parts": lambda gw: "abc.def.ghi",
    "forged signature, same kid": lambda gw: gw.mint(CLIENT, key=rsa_key_pair(gw.key.kid, 2102)),
    "unknown kid": lambda gw: gw.mint(CLIENT, kid="no-such-kid"),
    "HS256 with the public key as secret": lambda gw: gw.mint(CLIENT, alg="HS256"),
    "alg none": lambda gw: gw.mint(CLIENT, alg="none"),
    "RS512": lambda gw: gw.mint(CLIENT, alg="RS512"),
    "expired": lambda gw: gw.mint(CLIENT, exp_in=-10),
    "expires now": lambda gw: gw.mint(CLIENT, exp_in=0),
    "not valid yet": lambda gw: gw.mint(CLIENT, nbf=2_000_000_000_000),
    "wrong audience": lambda gw: gw.mint(CLIENT, aud="http://other.test"),
    "wrong audience in a list": lambda gw: gw.mint(CLIENT, aud=["http://other.test"]),
    "wrong issuer": lambda gw: gw.mint(CLIENT, iss="http://evil.test"),
    "no client_id": lambda gw: gw.mint(CLIENT, client_id=None),
}


def test_a_request_without_a_token_is_unauthorized(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    response = call(gateway, "GET", PATIENTS)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_request"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("make_token", INVALID_TOKENS.values(), ids=INVALID_TOKENS.keys())
def test_an_invalid_token_is_unauthorized(
    gateway: Gateway, make_token: Callable[[Gateway], str]
) -> None:
    gateway.grant(CLIENT)

    response = call(gateway, "GET", PATIENTS, make_token(gateway))

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_an_audience_list_naming_the_gateway_first_is_accepted(gateway: Gateway) -> None:
    gateway.grant(CLIENT)
    token = gateway.mint(CLIENT, aud=[gateway.config.audience, "http://other.test"])

    assert call(gateway, "GET", PATIENTS, token).status_code == 200


def test_the_token_is_checked_before_the_path(gateway: Gateway) -> None:
    assert call(gateway, "GET", "/nowhere").status_code == 401
    assert call(gateway, "GET", f"/{KOMMUNE}/fhir/Unknown", "garbage").status_code == 401


def test_the_token_never_reaches_the_log(gateway: Gateway) -> None:
    gateway.grant(CLIENT)
    token = gateway.mint(CLIENT)

    assert call(gateway, "GET", PATIENTS, token).status_code == 200
    assert call(gateway, "GET", f"/{OTHER_KOMMUNE}/fhir/Patient", token).status_code == 403

    log = gateway.log.read_text()
    assert token.split(".")[2] not in log
    assert CLIENT not in log
    # The data-access log names the client, never its token.
    access_log = gateway.config.access_log
    wait_until(lambda: access_log.read_text().count("\n") == 2, timeout=10, what="access log")
    assert token.split(".")[1] not in access_log.read_text()
    assert token.split(".")[2] not in access_log.read_text()
    assert CLIENT in access_log.read_text()


# -- 404: the route --------------------------------------------------------------------------


def test_an_unknown_resource_type_is_not_found(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    response = call(gateway, "GET", f"/{KOMMUNE}/fhir/Medication", gateway.mint(CLIENT))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "Medication" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        f"/{KOMMUNE}",
        f"/{KOMMUNE}/fhir",
        f"/{KOMMUNE}/fhir/",
        f"/{KOMMUNE}/api/Patient",
        f"/{KOMMUNE[:-1]}/fhir/Patient",
        f"/{KOMMUNE}0/fhir/Patient",
        "/abcdefghi/fhir/Patient",
        "/test/fhir/Patient",
        f"/prod/{KOMMUNE}/fhir/Patient",
        f"/{KOMMUNE}/fhir/Patient/../Observation",
        f"/{KOMMUNE}/fhir/Patient/./1",
        f"/{KOMMUNE}/fhir/Patient/%2e%2e/Observation",
        f"/{KOMMUNE}/fhir/Patient/..",
        f"/test/{KOMMUNE}/fhir/Patient/../../{OTHER_KOMMUNE}/fhir/Patient",
        f"/{KOMMUNE}/fhir/Patient//1",
    ],
)
def test_a_malformed_path_is_not_found(gateway: Gateway, path: str) -> None:
    gateway.grant(CLIENT)
    # http.client sends the path as it is (requests would resolve the dot segments itself).
    connection = http.client.HTTPConnection(gateway.config.bind, timeout=5)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {gateway.mint(CLIENT)}"})
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()

    assert status == 404
    assert body["error"] == "not_found"


# -- environments ----------------------------------------------------------------------------


def test_a_test_token_never_passes_on_production_routes(gateway: Gateway) -> None:
    gateway.grant("test-client", environment="test")
    token = gateway.mint("test-client")

    assert call(gateway, "GET", PATIENTS, token).status_code == 403
    response = call(gateway, "GET", f"/test{PATIENTS}", token)
    assert response.status_code == 200
    assert response.json()["environment"] == "test"
    assert response.json()["kommune"] == KOMMUNE


def test_a_production_token_never_passes_on_test_routes(gateway: Gateway) -> None:
    gateway.grant("prod-client", environment="production")
    token = gateway.mint("prod-client")

    assert call(gateway, "GET", f"/test{PATIENTS}", token).status_code == 403
    assert call(gateway, "POST", f"/test{PATIENTS}/_search", token).status_code == 403
    assert call(gateway, "GET", PATIENTS, token).status_code == 200


# -- the adapter: runtime map changes --------------------------------------------------------


def test_upserting_twice_leaves_one_entry(gateway: Gateway) -> None:
    granted = entry()

    gateway.adapter.upsert(granted)
    gateway.adapter.upsert(granted)

    assert gateway.adapter.entries() == {granted.key}
    show_map = gateway.adapter._runtime(f"show map {gateway.config.grants_map}\n")
    assert show_map.count(granted.key) == 1
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 200


def test_removing_an_entry_forbids_at_once(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)
    token = gateway.mint(CLIENT)
    assert call(gateway, "GET", PATIENTS, token).status_code == 200

    gateway.adapter.remove(granted)

    assert call(gateway, "GET", PATIENTS, token).status_code == 403
    assert gateway.adapter.entries() == set()


def test_removing_a_missing_entry_is_harmless_and_keeps_it_closed(gateway: Gateway) -> None:
    """Revoked though the running map lacks it: the grants file, or the reconciler's add-back,
    may hold it (review round 2, S1 and M4)."""
    gateway.adapter.remove(entry())
    gateway.adapter.remove(entry())

    assert gateway.adapter.entries() == set()
    assert show_map(gateway, gateway.config.revoked_map).count(entry().key) == 1
    gateway.adapter.replace_all([])  # the reconciler's swap lets go of it
    assert gateway.adapter.revoked() == set()


def show_map(gateway: Gateway, map_file: Path) -> str:
    return gateway.adapter._runtime(f"show map {map_file}\n")


def test_a_removal_goes_to_the_revoked_map_and_leaves_the_grants_map_alone(
    gateway: Gateway,
) -> None:
    """HAProxy 2.6's `del map` walks every entry of the grants map; `add map` to the small
    revoked map costs the same at 30,000 entries as at 1,000."""
    granted, other = gateway.grant(CLIENT), gateway.grant("other-client")
    token = gateway.mint(CLIENT)

    gateway.adapter.remove(granted)
    gateway.adapter.remove(granted)  # once is enough

    assert call(gateway, "GET", PATIENTS, token).status_code == 403
    assert granted.key in show_map(gateway, gateway.config.grants_map)
    assert show_map(gateway, gateway.config.revoked_map).count(granted.key) == 1
    assert gateway.adapter.revoked() == {granted.key}
    assert gateway.adapter.entries() == {other.key}
    assert call(gateway, "GET", PATIENTS, gateway.mint("other-client")).status_code == 200


def test_a_removed_entry_granted_again_passes_again(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)
    gateway.adapter.remove(granted)

    gateway.adapter.upsert(granted)

    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 200
    assert gateway.adapter.revoked() == set()
    assert show_map(gateway, gateway.config.grants_map).count(granted.key) == 1


def test_replace_all_folds_the_removals_into_the_new_grants_map(gateway: Gateway) -> None:
    removed, kept = gateway.grant(CLIENT), gateway.grant("other-client")
    # Enough removals that letting go of them takes several batches of commands.
    many = [entry(f"gone-{n:04d}", kommune=f"{100000000 + n}") for n in range(300)]
    for gone in many:
        gateway.adapter.upsert(gone)
        gateway.adapter.remove(gone)
    gateway.adapter.remove(removed)
    assert len(gateway.adapter.revoked()) == len(many) + 1

    gateway.adapter.replace_all([kept])

    assert gateway.adapter.revoked() == set()
    assert removed.key not in show_map(gateway, gateway.config.grants_map)
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 403
    assert gateway.adapter.entries() == {kept.key}


def test_a_removal_made_while_the_new_map_was_computed_stays_in_force(gateway: Gateway) -> None:
    """The entries were read before the removal: the new grants map still holds the key, so the
    revoked map keeps it until a later swap leaves it out."""
    removed = gateway.grant(CLIENT)
    stale = [removed]
    gateway.adapter.remove(removed)

    gateway.adapter.replace_all(stale)

    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 403
    assert gateway.adapter.revoked() == {removed.key}
    gateway.adapter.replace_all([])
    assert gateway.adapter.revoked() == set()


def test_replace_all_swaps_5000_entries_atomically(gateway: Gateway) -> None:
    kept = gateway.grant(CLIENT)
    dropped = gateway.grant("dropped-client")
    new = [entry(f"client-{n:05d}", kommune=f"{100000000 + n}") for n in range(4999)] + [kept]
    token = gateway.mint(CLIENT)
    statuses: list[int] = []
    done = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not done.is_set():
                url = gateway.url + PATIENTS
                headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
                statuses.append(session.get(url, headers=headers, timeout=5).status_code)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        gateway.adapter.replace_all(new)
    finally:
        done.set()
        thread.join()

    assert statuses
    assert set(statuses) == {200}  # the kept grant never disappeared, not even for a moment
    assert gateway.adapter.entries() == {e.key for e in new}
    assert call(gateway, "GET", PATIENTS, gateway.mint(dropped.client_id)).status_code == 403
    last = new[0]
    path = f"/{last.kommune}/fhir/Patient"
    assert call(gateway, "GET", path, gateway.mint(last.client_id)).status_code == 200


def test_replace_all_with_nothing_empties_the_map(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    gateway.adapter.replace_all([])

    assert gateway.adapter.entries() == set()


def test_set_resources_replaces_the_resource_types_at_runtime(gateway: Gateway) -> None:
    # A new service's scope reaches the gateway with the configuration (and a reload).
    medication = ("nhn:ksp/medication.read", "nhn:ksp/medication.write")
    gateway.adapter.write_config(
        [gateway.key.signing_key], scopes={**SCOPES, "medication": medication}
    )
    gateway.adapter.reload()
    gateway.grant(CLIENT, service="medication")
    token = gateway.mint(CLIENT, scope=medication[0])
    assert gateway.adapter.resources() == RESOURCES
    assert call(gateway, "GET", f"/{KOMMUNE}/fhir/Medication", token).status_code == 404

    gateway.adapter.set_resources({"Medication": "medication"})

    assert gateway.adapter.resources() == {"Medication": "medication"}
    assert call(gateway, "GET", f"/{KOMMUNE}/fhir/Medication", token).status_code == 200
    assert call(gateway, "GET", PATIENTS, token).status_code == 404


def test_entries_the_gateway_cannot_carry_are_refused() -> None:
    for bad in (
        {"client_id": "a b"},
        {"client_id": "a;del map x"},
        {"client_id": "a|b"},
        {"client_id": ""},
        {"kommune": "12345678"},
        {"environment": "staging"},
        {"access": "admin"},
        {"service": "pa tient"},
        {"service_codes": ["rt"]},
        {"service_codes": ["RT,TA"]},
        {"service_codes": ["RT TA"]},
    ):
        with pytest.raises(ValueError, match=r"."):
            entry(**bad)


def test_the_grants_map_holds_each_grants_service_codes_and_upsert_follows_a_change(
    gateway: Gateway,
) -> None:
    codes = entry(service_codes=("TA", "RT", "TA"))
    assert (codes.service_codes, codes.value, entry().value) == (("RT", "TA"), "RT,TA", "-")

    gateway.adapter.upsert(codes)
    assert gateway.adapter.values() == {codes.key: "RT,TA"}
    narrowed = entry(service_codes=("RT",))
    gateway.adapter.upsert(narrowed)

    assert gateway.adapter.values() == {codes.key: "RT"}
    assert show_map(gateway, gateway.config.grants_map).count(codes.key) == 1
    answer = call(gateway, "GET", PATIENTS, gateway.mint(CLIENT), ServiceCodes="TA")
    assert answer.status_code == 403
    answer = call(gateway, "GET", PATIENTS, gateway.mint(CLIENT))
    assert answer.json()["service_codes"] == "RT"


def test_the_map_files_and_a_full_swap_carry_the_service_codes(gateway: Gateway) -> None:
    codes = entry(service_codes=("DHO", "GPS"))

    gateway.adapter.write_map_files([codes], RESOURCES)
    assert gateway.config.grants_map.read_text() == f"{codes.key} DHO,GPS\n"
    gateway.adapter.replace_all([codes])

    assert gateway.adapter.values() == {codes.key: "DHO,GPS"}
    answer = call(gateway, "GET", PATIENTS, gateway.mint(CLIENT))
    assert answer.json()["service_codes"] == "DHO,GPS"


def test_a_changed_catalogue_scope_rewrites_the_configuration_and_takes_effect_on_reload(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT)
    renamed = {**SCOPES, "patient": ("nhn:ksp/pasient.les", "nhn:ksp/pasient.skriv")}
    old_token = gateway.mint(CLIENT, scope="nhn:ksp/patient.read")
    new_token = gateway.mint(CLIENT, scope="nhn:ksp/pasient.les")

    assert gateway.adapter.write_config([gateway.key.signing_key], scopes=SCOPES) is False
    assert gateway.adapter.write_config([gateway.key.signing_key], scopes=renamed) is True
    assert "patient|read nhn:ksp/pasient.les" in gateway.config.scopes_map.read_text()
    assert call(gateway, "GET", PATIENTS, old_token).status_code == 200  # until the reload
    gateway.adapter.write_map_files([entry()], RESOURCES)
    gateway.adapter.reload()

    assert call(gateway, "GET", PATIENTS, old_token).status_code == 403
    assert call(gateway, "GET", PATIENTS, new_token).status_code == 200


def test_a_scope_the_gateway_cannot_carry_is_refused(
    rsa_signing_key: KeyPair, tmp_path: Path
) -> None:
    config = GatewayConfig(tmp_path, "127.0.0.1:1", "127.0.0.1:2", "http://i", "http://a")
    adapter = HAProxyGateway(config)
    for bad in ("nhn:ksp/x.read' or '", "a b", "x$y", ""):
        with pytest.raises(ValueError, match="scope"):
            adapter.render([rsa_signing_key.signing_key], scopes={"x": (bad, "nhn:ksp/x.write")})


# -- the adapter: files, reload and restart --------------------------------------------------


def test_map_files_written_before_a_reload_keep_the_entries(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)

    assert gateway.adapter.write_map_files([granted], RESOURCES) is True
    gateway.adapter.reload()

    assert gateway.adapter.entries() == {granted.key}
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 200


def test_map_files_written_before_a_restart_keep_the_entries(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)
    gateway.adapter.write_map_files([granted], RESOURCES)

    gateway.restart()

    assert gateway.adapter.entries() == {granted.key}
    assert gateway.adapter.resources() == RESOURCES
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 200


def test_runtime_only_entries_are_lost_on_a_restart_or_reload(gateway: Gateway) -> None:
    """The gotcha: HAProxy loads the map FILES at startup; a runtime change is memory only."""
    token = gateway.mint(CLIENT)
    gateway.grant(CLIENT)
    gateway.restart()
    assert gateway.adapter.entries() == set()
    assert call(gateway, "GET", PATIENTS, token).status_code == 403

    gateway.grant(CLIENT)
    gateway.adapter.reload()
    assert gateway.adapter.entries() == set()
    assert call(gateway, "GET", PATIENTS, token).status_code == 403


def test_write_map_files_writes_only_when_the_content_differs(gateway: Gateway) -> None:
    granted = entry()
    grants_map = gateway.config.grants_map

    assert gateway.adapter.write_map_files([granted, granted], RESOURCES) is True
    first = grants_map.stat()
    assert gateway.adapter.write_map_files([granted], RESOURCES) is False
    assert grants_map.stat().st_ino == first.st_ino
    assert grants_map.read_text() == f"{granted.key} -\n"
    assert gateway.adapter.write_map_files([], RESOURCES) is True
    assert grants_map.read_text() == ""


def test_key_rotation_takes_effect_on_reload(gateway: Gateway) -> None:
    granted = gateway.grant(CLIENT)
    adapter = gateway.adapter
    old_key, new_key = gateway.key, rsa_key_pair("as-key-2", 2103)
    assert adapter.write_config([old_key.signing_key], scopes=SCOPES) is False  # nothing to do

    assert adapter.write_config([new_key.signing_key], scopes=SCOPES) is True
    assert (gateway.config.keys_dir / "as-key-2.pem").stat().st_mode & 0o777 == 0o644
    assert not (gateway.config.keys_dir / "as-key-1.pem").exists()
    # Until the reload the running worker knows the old key only.
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT, key=new_key)).status_code == 401
    adapter.write_map_files([granted], RESOURCES)
    adapter.reload()

    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT, key=new_key)).status_code == 200
    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT, key=old_key)).status_code == 401


def test_an_es256_token_from_a_p256_key_passes(gateway: Gateway) -> None:
    ec_key = ec_key_pair("as-ec-1")
    assert gateway.adapter.write_config(
        [gateway.key.signing_key, ec_key.signing_key], scopes=SCOPES
    )
    gateway.adapter.reload()
    gateway.grant(CLIENT)

    ok = gateway.mint(CLIENT, key=ec_key, alg="ES256")
    assert call(gateway, "GET", PATIENTS, ok).status_code == 200
    # The kid picks the key, and the key its algorithm.
    as_rsa = gateway.mint(CLIENT, key=gateway.key, kid="as-ec-1")
    assert call(gateway, "GET", PATIENTS, as_rsa).status_code == 401


def test_a_configuration_haproxy_rejects_fails_the_reload_and_keeps_the_worker(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT)
    config_file = gateway.config.config_file
    config_file.write_text(config_file.read_text() + "\n    no-such-directive\n")

    with pytest.raises(GatewayError, match="rejected"):
        gateway.adapter.reload()

    assert call(gateway, "GET", PATIENTS, gateway.mint(CLIENT)).status_code == 200


def test_the_adapter_raises_gateway_unavailable_when_haproxy_is_stopped(
    gateway: Gateway,
) -> None:
    gateway.stop()
    adapter = gateway.adapter

    assert adapter.is_running() is False
    for action in (
        lambda: adapter.upsert(entry()),
        lambda: adapter.remove(entry()),
        adapter.entries,
        lambda: adapter.replace_all([entry()]),
        adapter.resources,
        adapter.reload,
    ):
        with pytest.raises(GatewayUnavailable):
            action()


def test_a_missing_socket_is_unavailable_not_an_error(tmp_path: Path) -> None:
    config = GatewayConfig(tmp_path, "127.0.0.1:1", "127.0.0.1:2", "http://i", "http://a")
    adapter = HAProxyGateway(config, timeout=0.5)

    with pytest.raises(GatewayUnavailable, match="runtime.sock"):
        adapter.entries()


# -- signing keys ----------------------------------------------------------------------------


def test_signing_keys_from_jwks_keeps_rs256_and_p256_keys_only() -> None:
    jwks = {
        "keys": [
            rsa_public_jwk("rsa-1"),
            {k: v for k, v in rsa_public_jwk("rsa-no-alg").items() if k != "alg"},
            ec_public_jwk("ec-1"),
            rsa_public_jwk("ps-1", alg="PS256"),
            rsa_public_jwk("enc-1", use="enc"),
            {**ec_public_jwk("p384"), "crv": "P-384", "alg": "ES384"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {**rsa_public_jwk("bad kid/../x")},
            {**rsa_public_jwk("rsa-1"), "n": "AQAB"},  # repeated kid, and too short
            {"kty": "RSA", "kid": "broken", "n": 42, "e": "AQAB"},
        ]
    }

    keys = signing_keys_from_jwks(jwks)

    assert [(key.kid, key.alg) for key in keys] == [
        ("rsa-1", "RS256"),
        ("rsa-no-alg", "RS256"),
        ("ec-1", "ES256"),
    ]
    assert all(key.pem.startswith(b"-----BEGIN PUBLIC KEY-----") for key in keys)


def test_a_key_with_an_unsafe_kid_cannot_be_configured(rsa_signing_key: KeyPair) -> None:
    with pytest.raises(ValueError, match="kid"):
        SigningKey(kid='x" if TRUE', alg="RS256", pem=rsa_signing_key.public_pem)
    with pytest.raises(ValueError, match="alg"):
        SigningKey(kid="x", alg="PS256", pem=rsa_signing_key.public_pem)
