"""The gateway understands FHIR R4, for real: HAProxy 2.6 with the rendered configuration and
``gateway/fhir.lua``, in front of the echo upstream.

A grant for one service must not read another through the FHIR search forms that reach other
resource types: compartments, operations, include/revinclude/has, chains, contained resources,
the form body of ``_search``, a Bundle posted to the base, or encodings that hide any of these.
"""

# The fixtures are imported, so every test naming one as a parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from provisioning.gateway import HAProxyGateway
from tests.provisioning.gateway_fixtures import (  # noqa: F401 - gateway, rsa_signing_key: fixtures
    KOMMUNE,
    OTHER_KOMMUNE,
    RESOURCES,
    SCOPES,
    Gateway,
    gateway,
    rsa_signing_key,
)

CLIENT = "vendor-client-1"
BASE = f"/{KOMMUNE}/fhir"
FORM = "application/x-www-form-urlencoded"
#: Every scope of the fixture's catalogue: tokens that the scope check alone would not stop.
ALL_SCOPES = " ".join(
    f"nhn:ksp/{code}.{a}" for code in RESOURCES.values() for a in ("read", "write")
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", ""))


def send(
    gw: Gateway,
    method: str,
    path: str,
    token: str | None = None,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """The request exactly as written: http.client neither resolves dot segments nor
    re-encodes the path (requests would)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection(gw.config.bind, timeout=10)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    return Answer(response.status, json.loads(raw) if raw else {})


def token(gw: Gateway, client_id: str = CLIENT, scope: str | None = ALL_SCOPES) -> str:
    return gw.mint(client_id, scope=scope)


def post_search(
    gw: Gateway,
    body: bytes | str,
    content_type: str = FORM,
    *,
    resource: str = "Patient",
    headers: dict[str, str] | None = None,
) -> Answer:
    """``body`` posted to the ``_search`` of ``resource`` with a token of every scope."""
    sent = {"Content-Type": content_type, **(headers or {})}
    return send(gw, "POST", f"{BASE}/{resource}/_search", token(gw), body=body, headers=sent)


def post_create_if_none_exist(
    gw: Gateway, condition: str, headers: dict[str, str] | None = None
) -> Answer:
    """A conditional create of a Patient with a token of every scope."""
    sent = {"If-None-Exist": condition, **(headers or {})}
    return send(gw, "POST", f"{BASE}/Patient", token(gw), body=b"{}", headers=sent)


def assert_refused(answer: Answer, status: int, error: str, named: str = "") -> None:
    assert answer.status == status
    assert answer.body["error"] == error
    assert named in answer.detail


# -- 1. Only the FHIR shapes pass ------------------------------------------------------------

REFUSED_PATHS = {
    "a compartment search": ("GET", f"{BASE}/Patient/1/Observation", "compartment"),
    "a compartment search of every type": ("GET", f"{BASE}/Patient/1/*", "not a fhir"),
    "an instance operation": ("GET", f"{BASE}/Patient/1/$everything", "operation"),
    "an instance operation posted": ("POST", f"{BASE}/Patient/1/$everything", "operation"),
    "a type operation": ("POST", f"{BASE}/Patient/$match", "operation"),
    "a system operation": ("GET", f"{BASE}/$export", "operation"),
    "an operation on a version": ("GET", f"{BASE}/Patient/1/_history/2/$meta", "operation"),
    "a percent-encoded operation": ("GET", f"{BASE}/Patient/1/%24everything", "percent"),
    "a batch posted to the base": ("POST", BASE, "base"),
    "a transaction posted to the base with a slash": ("POST", f"{BASE}/", "base"),
    "a search of the base": ("GET", f"{BASE}?_type=Observation", "base"),
    "a test-environment batch": ("POST", f"/test{BASE}", "base"),
    "an encoded slash": ("GET", f"{BASE}/Patient%2F1", "percent"),
    "an encoded slash in lower case": ("GET", f"{BASE}/Patient/1%2fObservation", "percent"),
    "an encoded dot": ("GET", f"{BASE}/Patient/%2E%2E/Observation", "percent"),
    "an encoded dot in lower case": ("GET", f"{BASE}/Patient/%2e", "percent"),
    "an encoded letter": ("GET", f"{BASE}/Pati%65nt/1", "percent"),
    "a dot-dot segment": ("GET", f"{BASE}/Patient/../Observation", "not a fhir"),
    "a dot segment": ("GET", f"{BASE}/Patient/./1", "not a fhir"),
    "a dot-dot id": ("GET", f"{BASE}/Patient/..", "not a fhir"),
    "a dot-dot version": ("GET", f"{BASE}/Patient/1/_history/..", "not a fhir"),
    "the history of a type": ("GET", f"{BASE}/Patient/_history", "not a fhir"),
    "a segment after a version": ("GET", f"{BASE}/Patient/1/_history/2/x", "not a fhir"),
    "a segment after _search": ("POST", f"{BASE}/Patient/_search/more", "not a fhir"),
    "a trailing slash": ("GET", f"{BASE}/Patient/", "not a fhir"),
    "a trailing slash after an id": ("GET", f"{BASE}/Patient/1/", "not a fhir"),
    "an empty segment": ("GET", f"{BASE}/Patient//1", "not a fhir"),
    "an id longer than 64": ("GET", f"{BASE}/Patient/{'a' * 65}", "not a fhir"),
    "an id with an underscore": ("GET", f"{BASE}/Patient/a_b", "not a fhir"),
    "a path parameter": ("GET", f"{BASE}/Patient;x=1/1", "not a fhir"),
}


@pytest.mark.parametrize(
    ("method", "path", "reason"), REFUSED_PATHS.values(), ids=REFUSED_PATHS.keys()
)
def test_a_path_that_is_not_one_of_the_five_fhir_shapes_is_not_found(
    gateway: Gateway, method: str, path: str, reason: str
) -> None:
    for service in RESOURCES.values():
        gateway.grant(CLIENT, service=service)
        gateway.grant(CLIENT, service=service, access="write")
        gateway.grant(CLIENT, service=service, environment="test")

    answer = send(gateway, method, path, token(gateway), body=b"{}" if method == "POST" else None)

    assert answer.status == 404
    assert answer.body["error"] == "not_found"
    assert reason in answer.detail.lower()


ALLOWED_SHAPES = {
    "a search": ("GET", "Patient", "read"),
    "a search with parameters": ("GET", "Patient?name=x&_count=10&_sort=-_lastUpdated", "read"),
    "a search through _search": ("GET", "Patient/_search?name=x", "read"),
    "a search posted to _search": ("POST", "Patient/_search", "read"),
    "a read": ("GET", "Patient/1", "read"),
    "a head": ("HEAD", "Patient/1", "read"),
    "a read of an id with dots and dashes": ("GET", "Patient/a-b.c", "read"),
    "a read of a 64-character id": ("GET", f"Patient/{'a' * 64}", "read"),
    "a history": ("GET", "Patient/1/_history", "read"),
    "a version read": ("GET", "Patient/1/_history/2", "read"),
    "a create": ("POST", "Patient", "write"),
    "a conditional update": ("PUT", "Patient?identifier=x", "write"),
    "an update": ("PUT", "Patient/1", "write"),
    "a patch": ("PATCH", "Patient/1", "write"),
    "a delete": ("DELETE", "Patient/1", "write"),
}


@pytest.mark.parametrize(
    ("method", "path", "access"), ALLOWED_SHAPES.values(), ids=ALLOWED_SHAPES.keys()
)
def test_the_five_fhir_shapes_pass_with_the_access_they_need(
    gateway: Gateway, method: str, path: str, access: str
) -> None:
    gateway.grant("granted", access=access)
    other = "write" if access == "read" else "read"
    gateway.grant("other-access", access=other)

    answer = send(gateway, method, f"{BASE}/{path}", token(gateway, "granted"))

    assert answer.status == 200
    if method != "HEAD":
        assert (answer.body["access"], answer.body["path"]) == (access, f"{BASE}/{path}")
    assert send(gateway, method, f"{BASE}/{path}", token(gateway, "other-access")).status == 403


REFUSED_METHODS = {
    "a post to an instance": ("POST", "Patient/1"),
    "a put to _search": ("PUT", "Patient/_search"),
    "a delete of _search": ("DELETE", "Patient/_search"),
    "a delete of a history": ("DELETE", "Patient/1/_history"),
    "a put to a version": ("PUT", "Patient/1/_history/2"),
    "a delete of a version": ("DELETE", "Patient/1/_history/2"),
    "options": ("OPTIONS", "Patient"),
    "trace": ("TRACE", "Patient/1"),
}


@pytest.mark.parametrize(("method", "path"), REFUSED_METHODS.values(), ids=REFUSED_METHODS.keys())
def test_a_method_the_shape_does_not_take_is_forbidden_even_with_both_accesses(
    gateway: Gateway, method: str, path: str
) -> None:
    gateway.grant(CLIENT, access="read")
    gateway.grant(CLIENT, access="write")

    answer = send(gateway, method, f"{BASE}/{path}", token(gateway))

    assert_refused(answer, 403, "forbidden", method)


# -- 2. Search parameters that reach another resource type ----------------------------------

#: (request path under the base, what the detail names). The client holds patient.read only.
REACHING_SEARCHES = {
    "_revinclude": ("Patient?_revinclude=Observation:subject", "Observation"),
    "_revinclude:iterate": ("Patient?_revinclude:iterate=Observation:subject", "Observation"),
    "_revinclude naming the target": (
        "Patient?_revinclude=Observation:subject:Patient",
        "Observation",
    ),
    "_include of another type": (
        "Patient?name=x&_include=Patient:general-practitioner:CarePlan",
        "CarePlan",
    ),
    "_include:iterate": ("Patient?_include:iterate=Observation:subject:Patient", "Observation"),
    "_include:recurse": ("Patient?_include:recurse=Observation:subject:Patient", "Observation"),
    "_include without a target type": ("Patient?_include=Patient:organization", "target"),
    "_include of every reference": ("Patient?_include=*", "*"),
    "_include of every parameter": ("Patient?_include=Patient:*", "*"),
    "_has": ("Patient?_has:Observation:patient:code=1234-5", "Observation"),
    "_has with a modifier": ("Patient?_has:Observation:patient:code:text=x", "Observation"),
    "nested _has": (
        "Patient?_has:Observation:patient:_has:CarePlan:subject:status=active",
        "Observation",
    ),
    "a typed chain": ("Patient?link:Observation.code=x", "Observation"),
    "an untyped chain": ("Patient?general-practitioner.name=x", "chain"),
    "an untyped chain after a typed one": ("Patient?link:Patient.organization.name=x", "chain"),
    "_contained": ("Patient?_contained=true", "_contained"),
    "_contained both": ("Patient?_contained=both", "_contained"),
    "_containedType container": ("Patient?_containedType=container", "_containedType"),
    "_type": ("Patient?_type=Observation", "Observation"),
    "_filter": ("Patient?_filter=name+eq+x", "_filter"),
    "_query": ("Patient?_query=everything", "_query"),
    "an unknown type in _include": ("Patient?_include=Patient:link:Practitioner", "Practitioner"),
    "_incl%75de": ("Patient?_incl%75de=Patient:link:Observation", "Observation"),
    "%5Frevinclude": ("Patient?%5Frevinclude=Observation:subject", "Observation"),
    "_has with encoded colons": ("Patient?_has%3AObservation%3Apatient%3Acode=x", "Observation"),
    "an encoded value": ("Patient?_revinclude=Observ%61tion%3Asubject", "Observation"),
    "a lower-case encoding": ("Patient?_rev%69nclude=Observation:subject", "Observation"),
    "a parameter after a semicolon": ("Patient?name=x;_revinclude=Observation:subject", "Obs"),
    "a second _revinclude": (
        "Patient?_revinclude=Patient:link&_revinclude=Observation:subject",
        "Observation",
    ),
    "a comma-separated _type": ("Patient?_type=Patient,Observation", "Observation"),
    "a search through _search": ("Patient/_search?_revinclude=Observation:subject", "Obs"),
}


@pytest.mark.parametrize("where", ["query", "form body of a posted search"])
@pytest.mark.parametrize(
    ("path", "named"), REACHING_SEARCHES.values(), ids=REACHING_SEARCHES.keys()
)
def test_a_search_reaching_a_type_the_client_is_not_granted_is_forbidden(
    gateway: Gateway, path: str, named: str, where: str
) -> None:
    gateway.grant(CLIENT, service="patient")

    if where == "query":
        answer = send(gateway, "GET", f"{BASE}/{path}", token(gateway))
    else:
        answer = post_search(gateway, path.split("?", 1)[1].replace(" ", "+"))

    assert_refused(answer, 403, "forbidden", named)


def test_a_conditional_create_whose_if_none_exist_reaches_another_type_is_forbidden(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT, access="write")

    answer = post_create_if_none_exist(gateway, "_has:Observation:patient:code=x")

    assert answer.status == 403
    assert "Observation" in answer.detail


REACHING_GRANTED = {
    "_revinclude": ("Patient?_revinclude=Observation:subject", ["patient", "observation"]),
    "_revinclude:iterate": (
        "Patient?_revinclude:iterate=Observation:subject",
        ["patient", "observation"],
    ),
    "_include with its target": (
        "Observation?_include=Observation:subject:Patient",
        ["patient", "observation"],
    ),
    "_include of the same type": ("Patient?_include=Patient:link:Patient", ["patient"]),
    "_has": ("Patient?_has:Observation:patient:code=1234-5", ["patient", "observation"]),
    "nested _has": (
        "Patient?_has:Observation:patient:_has:CarePlan:subject:status=active",
        ["patient", "observation", "care-plan"],
    ),
    "a typed chain": ("Observation?subject:Patient.name=x", ["patient", "observation"]),
    "_contained=false": ("Patient?_contained=false", ["patient"]),
    "_type of the same type": ("Patient?_type=Patient", ["patient"]),
    "an encoded _revinclude": (
        "Patient?_rev%69nclude=Observation:subject",
        ["patient", "observation"],
    ),
    "a reference with a type modifier": ("Observation?subject:Patient=1", ["observation"]),
    "ordinary parameters": (
        "Patient?name=a%20b&birthdate=ge2000-01-01&_summary=count&_elements=name&_format=json",
        ["patient"],
    ),
}


@pytest.mark.parametrize(
    ("path", "services"), REACHING_GRANTED.values(), ids=REACHING_GRANTED.keys()
)
def test_a_search_reaching_only_types_the_client_is_granted_passes(
    gateway: Gateway, path: str, services: list[str]
) -> None:
    for service in services:
        gateway.grant(CLIENT, service=service)

    answer = send(gateway, "GET", f"{BASE}/{path}", token(gateway))
    resource, query = path.split("?", 1)
    posted = post_search(gateway, query, f"{FORM}; charset=UTF-8", resource=resource)

    assert (answer.status, posted.status) == (200, 200)
    assert answer.body["path"] == f"{BASE}/{path}"


OTHER_GRANTS = {
    "for another kommune": {"kommune": OTHER_KOMMUNE},
    "for write": {"access": "write"},
    "in the test environment": {"environment": "test"},
    "to another client": {"client_id": "other-client"},
}


@pytest.mark.parametrize("other", OTHER_GRANTS.values(), ids=OTHER_GRANTS.keys())
def test_a_grant_of_the_other_type_counts_only_for_the_same_client_kommune_environment_and_access(
    gateway: Gateway, other: dict[str, str]
) -> None:
    gateway.grant(CLIENT, service="patient")
    gateway.grant(other.pop("client_id", CLIENT), service="observation", **other)

    answer = send(gateway, "GET", f"{BASE}/Patient?_revinclude=Observation:subject", token(gateway))

    assert answer.status == 403
    assert "Observation" in answer.detail


def test_grants_changed_through_the_runtime_api_are_seen_by_the_parameter_check(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT, service="patient")
    path = f"{BASE}/Patient?_revinclude=Observation:subject"
    assert send(gateway, "GET", path, token(gateway)).status == 403

    observation = gateway.grant(CLIENT, service="observation")
    assert send(gateway, "GET", path, token(gateway)).status == 200

    gateway.adapter.remove(observation)  # the revoked map
    assert send(gateway, "GET", path, token(gateway)).status == 403

    gateway.adapter.upsert(observation)
    assert send(gateway, "GET", path, token(gateway)).status == 200

    patient = gateway.grant(CLIENT, service="patient")
    gateway.adapter.replace_all([patient])  # a new version of the grants map
    assert send(gateway, "GET", path, token(gateway)).status == 403


def test_a_form_body_that_is_not_form_encoded_is_refused(gateway: Gateway) -> None:
    gateway.grant(CLIENT)

    answer = post_search(
        gateway, json.dumps({"_revinclude": "Observation:subject"}), "application/json"
    )

    assert_refused(answer, 415, "unsupported_media_type")


def test_a_form_body_too_long_to_check_is_refused(gateway: Gateway) -> None:
    gateway.grant(CLIENT)
    body = urlencode({"name": "x" * 20_000, "_revinclude": "Observation:subject"})

    answer = post_search(gateway, body)

    assert_refused(answer, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["Patient?name=%zz", "Patient?na%2me=x"])
def test_a_broken_percent_encoding_in_the_query_is_a_bad_request(
    gateway: Gateway, path: str
) -> None:
    gateway.grant(CLIENT)

    answer = send(gateway, "GET", f"{BASE}/{path}", token(gateway))

    assert answer.status == 400
    assert answer.body["error"] == "bad_request"


# -- 3. The token's scope --------------------------------------------------------------------

SCOPES_WITHOUT_THE_GRANT = {
    "no scope claim": None,
    "an empty scope": "",
    "a longer scope that starts the same": "nhn:ksp/patient.readx",
    "a scope that contains it": "xnhn:ksp/patient.read",
    "the other access": "nhn:ksp/patient.write",
    "another service": "nhn:ksp/observation.read",
    "a scope with the dot as any character": "nhn:ksp/patientxread",
}


@pytest.mark.parametrize("scope", SCOPES_WITHOUT_THE_GRANT.values(), ids=SCOPES_WITHOUT_THE_GRANT)
def test_a_grant_whose_scope_the_token_lacks_is_forbidden(
    gateway: Gateway, scope: str | None
) -> None:
    gateway.grant(CLIENT)

    answer = send(gateway, "GET", f"{BASE}/Patient/1", token(gateway, scope=scope))

    assert_refused(answer, 403, "insufficient_scope", "nhn:ksp/patient.read")


@pytest.mark.parametrize(
    "scope",
    ["nhn:ksp/patient.read", "openid nhn:ksp/patient.read", "nhn:ksp/x.read nhn:ksp/patient.read"],
)
def test_a_grant_whose_scope_the_token_holds_as_a_whole_word_passes(
    gateway: Gateway, scope: str
) -> None:
    gateway.grant(CLIENT)

    assert send(gateway, "GET", f"{BASE}/Patient/1", token(gateway, scope=scope)).status == 200


def test_a_search_reaching_a_granted_type_whose_scope_the_token_lacks_is_forbidden(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT, service="patient")
    gateway.grant(CLIENT, service="observation")
    path = f"{BASE}/Patient?_revinclude=Observation:subject"

    answer = send(gateway, "GET", path, token(gateway, scope="nhn:ksp/patient.read"))

    assert_refused(answer, 403, "insufficient_scope", "nhn:ksp/observation.read")
    both = "nhn:ksp/patient.read nhn:ksp/observation.read"
    assert send(gateway, "GET", path, token(gateway, scope=both)).status == 200


# -- 4. Tjenstlig behov: the ServiceCodes header --------------------------------------------


def codes_grant(gw: Gateway, codes: list[str]) -> None:
    gw.grant(CLIENT, service_codes=tuple(codes))


@pytest.mark.parametrize(
    ("held", "asked", "passed"),
    [
        (["RT", "TA"], None, "RT,TA"),
        (["RT", "TA"], "TA", "TA"),
        (["RT", "TA"], "rt, ta", "RT,TA"),
        (["RT", "TA"], " TA ,RT", "RT,TA"),
        ([], None, ""),
        (["DHO", "GPS"], "GPS", "GPS"),
    ],
)
def test_the_granted_service_codes_asked_for_are_passed_upstream(
    gateway: Gateway, held: list[str], asked: str | None, passed: str
) -> None:
    codes_grant(gateway, held)
    headers = {"X-Tilgang-Service-Codes": "RT,TA,GPS,MD,DT,DHO"}
    if asked is not None:
        headers["ServiceCodes"] = asked

    answer = send(gateway, "GET", f"{BASE}/Patient/1", token(gateway), headers=headers)

    assert answer.status == 200
    assert answer.body["service_codes"] == passed


@pytest.mark.parametrize(
    ("held", "asked"),
    [(["RT"], "TA"), (["RT"], "RT,TA"), ([], "RT"), (["RT"], "XX"), (["RT"], "RTA")],
)
def test_a_service_code_the_grant_does_not_hold_is_forbidden(
    gateway: Gateway, held: list[str], asked: str
) -> None:
    codes_grant(gateway, held)

    answer = send(
        gateway, "GET", f"{BASE}/Patient/1", token(gateway), headers={"ServiceCodes": asked}
    )

    assert_refused(answer, 403, "forbidden", "service code")


def test_every_service_codes_header_line_is_checked(gateway: Gateway) -> None:
    codes_grant(gateway, ["RT"])
    connection = http.client.HTTPConnection(gateway.config.bind, timeout=10)
    try:
        connection.putrequest("GET", f"{BASE}/Patient/1")
        connection.putheader("Authorization", f"Bearer {token(gateway)}")
        connection.putheader("ServiceCodes", "RT")
        connection.putheader("ServiceCodes", "TA")
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 403


@pytest.mark.parametrize("asked", ["", " , ", "RT;TA", "R T"])
def test_a_malformed_service_codes_header_is_a_bad_request(gateway: Gateway, asked: str) -> None:
    codes_grant(gateway, ["RT", "TA"])

    answer = send(
        gateway, "GET", f"{BASE}/Patient/1", token(gateway), headers={"ServiceCodes": asked}
    )

    assert answer.status == 400
    assert answer.body["error"] == "bad_request"


def test_a_compressed_form_body_is_refused_since_it_cannot_be_checked(gateway: Gateway) -> None:
    gateway.grant(CLIENT)
    body = gzip.compress(b"_revinclude=Observation:subject")

    answer = post_search(gateway, body, headers={"Content-Encoding": "gzip"})

    assert_refused(answer, 415, "unsupported_media_type")


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_a_method_override_header_never_reaches_the_upstream(gateway: Gateway, header: str) -> None:
    gateway.grant(CLIENT)  # read only

    answer = post_search(gateway, "name=x", headers={header: "DELETE"})

    assert answer.status == 200
    assert answer.body["method_override"] is None


def test_a_parameter_check_that_fails_in_lua_does_not_let_the_request_through(
    gateway: Gateway, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.lua"
    broken.write_text(
        'core.register_action("fhir_check", { "http-req" }, function(txn) error("boom") end, 0)\n'
    )
    adapter = HAProxyGateway(gateway.config, lua=broken)
    assert adapter.write_config([gateway.key.signing_key], scopes=SCOPES) is True
    gateway.adapter.reload()
    gateway.grant(CLIENT)

    answer = send(gateway, "GET", f"{BASE}/Patient?name=x", token(gateway))

    assert answer.status == 403
    assert "could not check" in answer.detail
    assert send(gateway, "GET", f"{BASE}/Patient", token(gateway)).status == 200
