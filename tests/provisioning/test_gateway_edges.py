"""The gateway's edges (issue 11, review round 2), for real: HAProxy 2.6 with the rendered
configuration and ``gateway/fhir.lua`` in front of the echo upstream.

A body the gateway checks only in part, a header read as its last line while the upstream reads
the first, a verdict the configuration does not name, a form body where FHIR takes a resource:
each would let a parameter or a header reach the upstream unchecked.
"""

# The fixtures are imported, so every test naming one as a parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from pathlib import Path

import pytest

from provisioning.gateway import HAProxyGateway
from tests.provisioning.gateway_fixtures import (  # noqa: F401 - gateway, rsa_signing_key: fixtures
    KOMMUNE,
    SCOPES,
    Gateway,
    gateway,
    rsa_signing_key,
)
from tests.provisioning.test_gateway_fhir import (
    CLIENT,
    FORM,
    Answer,
    assert_refused,
    post_create_if_none_exist,
    post_search,
    send,
    token,
)

BASE = f"/{KOMMUNE}/fhir"
REACHING = "_revinclude=Observation:subject"


def raw(gw: Gateway, head: list[tuple[str, str]], request_line: str, body: bytes = b"") -> Answer:
    """Send the request byte for byte (repeated headers, chunked bodies), read one answer."""
    lines = [request_line, f"Host: {gw.config.bind}"] + [f"{k}: {v}" for k, v in head]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    host, port = gw.config.bind.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=request_line.split(" ", 1)[0])
        response.begin()
        payload = response.read()
    return Answer(response.status, json.loads(payload) if payload else {})


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


# -- M1: a _search body is checked whole, or refused ----------------------------------------


def test_a_chunked_search_body_hiding_a_parameter_past_the_buffer_is_refused(
    gateway: Gateway,
) -> None:
    """~7.5 KiB of headers fill HAProxy's buffer with under 8 KiB of body: a chunked body has
    no length to tell the prefix from the whole, so the parameter after it went unchecked."""
    gateway.grant(CLIENT)  # patient.read only
    padding = [b"name=a&" * 100 for _ in range(10)]  # 7,000 bytes of harmless parameters

    answer = raw(
        gateway,
        [
            ("Authorization", f"Bearer {token(gateway)}"),
            ("Content-Type", FORM),
            ("Transfer-Encoding", "chunked"),
            ("X-Pad", "a" * 7600),
        ],
        f"POST {BASE}/Patient/_search HTTP/1.1",
        chunked(*padding, f"&{REACHING}".encode()),
    )

    assert answer.status == 411
    assert answer.body["error"] == "length_required"
    assert "Content-Length" in answer.detail


@pytest.mark.parametrize(
    "head",
    [
        [("Transfer-Encoding", "chunked")],
        [("Transfer-Encoding", "chunked"), ("Content-Length", "6")],
    ],
    ids=["chunked", "chunked with a content length"],
)
def test_a_search_body_without_exactly_one_content_length_is_refused(
    gateway: Gateway, head: list[tuple[str, str]]
) -> None:
    gateway.grant(CLIENT)

    answer = raw(
        gateway,
        [("Authorization", f"Bearer {token(gateway)}"), ("Content-Type", FORM), *head],
        f"POST {BASE}/Patient/_search HTTP/1.1",
        chunked(b"name=a"),
    )

    assert answer.status == 411
    assert answer.body["error"] == "length_required"


def test_a_search_body_with_its_length_and_the_same_padding_is_still_checked(
    gateway: Gateway,
) -> None:
    gateway.grant(CLIENT)
    body = b"name=a&" * 1000 + REACHING.encode()
    head = [("Authorization", f"Bearer {token(gateway)}"), ("Content-Type", FORM)]
    head += [("X-Pad", "a" * 7600), ("Content-Length", str(len(body)))]

    answer = raw(gateway, head, f"POST {BASE}/Patient/_search HTTP/1.1", body)

    # Past what the buffer holds beside these headers: refused as too long, never passed.
    assert answer.status in (403, 413)
    assert answer.status == 413 or "Observation" in answer.detail


def test_a_cleartext_http2_search_body_without_a_length_is_not_passed(gateway: Gateway) -> None:
    """HTTP/2 with prior knowledge carries a body without any length: past ~6 KiB of headers
    the buffer held a prefix, the prefix passed, and the parameter after it went upstream
    unchecked (200 on 2.6.12). The gateway speaks HTTP/1.1 only on cleartext
    (option disable-h2-upgrade), and a _search body needs its Content-Length."""
    gateway.grant(CLIENT)  # patient.read only
    body = b"name=a&" * 1000 + b"&" + REACHING.encode()

    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            f"Authorization: Bearer {token(gateway)}",
            "-H",
            f"Content-Type: {FORM}",
            "-H",
            f"X-Pad: {'a' * 8000}",
            "-X",
            "POST",
            "-T",
            "-",
            f"{gateway.url}{BASE}/Patient/_search",
        ],
        input=body,
        capture_output=True,
        timeout=20,
        check=False,
    )

    status = result.stdout.decode().strip()
    assert status != "200", (result.stdout, result.stderr)
    assert status in ("000", "400", "411"), (result.stdout, result.stderr)


# -- M2: a header the gateway checks is sent once -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "access", "repeated"),
    [
        (
            "POST",
            "Patient",
            "write",
            [
                ("If-None-Exist", "_has:Observation:patient:code=X"),
                ("If-None-Exist", "identifier=1"),
            ],
        ),
        (
            "POST",
            "Patient/_search",
            "read",
            [("Content-Type", "application/json"), ("Content-Type", FORM)],
        ),
        (
            "POST",
            "Patient/_search",
            "read",
            [("Content-Encoding", "gzip"), ("Content-Encoding", "identity")],
        ),
        (
            "PUT",
            "Patient/1",
            "write",
            [("Content-Type", "application/fhir+json"), ("Content-Type", "application/xml")],
        ),
    ],
    ids=["If-None-Exist", "Content-Type of a search", "Content-Encoding", "Content-Type of a put"],
)
def test_a_checked_header_sent_twice_is_a_bad_request(
    gateway: Gateway, method: str, path: str, access: str, repeated: list[tuple[str, str]]
) -> None:
    """Lua reads the last line, a servlet's getHeader the first: the gateway takes neither."""
    gateway.grant(CLIENT, access=access)
    body = b"name=x" if path.endswith("_search") else b"{}"
    head = [("Authorization", f"Bearer {token(gateway)}"), *repeated]
    head.append(("Content-Length", str(len(body))))

    answer = raw(gateway, head, f"{method} {BASE}/{path} HTTP/1.1", body)

    assert answer.status == 400
    assert answer.body["error"] == "bad_request"
    assert repeated[0][0] in answer.detail


def test_an_if_none_exist_with_commas_in_one_line_is_not_taken_for_two(gateway: Gateway) -> None:
    gateway.grant(CLIENT, access="write")

    answer = post_create_if_none_exist(
        gateway, "identifier=a,b", {"Content-Type": "application/fhir+json"}
    )

    assert answer.status == 200


# -- Nits: fail closed on any verdict, charsets, form bodies, ServiceCodes ------------------


@pytest.mark.parametrize(
    ("status", "verdict"), [(418, "refused"), (200, "refused"), (None, "maybe")]
)
def test_a_verdict_other_than_passed_is_refused_whatever_its_status(
    gateway: Gateway, tmp_path: Path, status: int | None, verdict: str
) -> None:
    odd = tmp_path / "odd.lua"
    status_line = "" if status is None else f'  txn:set_var("txn.refusal_status", {status})\n'
    odd.write_text(
        'core.register_action("fhir_check", { "http-req" }, function(txn)\n'
        f"{status_line}"
        '  txn:set_var("txn.refusal_detail", "odd")\n'
        f'  txn:set_var("txn.fhir_verdict", "{verdict}")\n'
        "end, 0)\n"
    )
    assert HAProxyGateway(gateway.config, lua=odd).write_config(
        [gateway.key.signing_key], scopes=SCOPES
    )
    gateway.adapter.reload()
    gateway.grant(CLIENT)

    answer = send(gateway, "GET", f"{BASE}/Patient?name=x", token(gateway))

    assert_refused(answer, 403, "forbidden")


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", "UTF-7", "utf-8x"])
def test_a_search_body_in_another_charset_is_refused(gateway: Gateway, charset: str) -> None:
    gateway.grant(CLIENT)

    answer = post_search(gateway, "name=x", f"{FORM}; charset={charset}")

    assert_refused(answer, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", [FORM, f"{FORM}; charset=utf-8", f'{FORM}; charset="UTF-8"', f"{FORM};"]
)
def test_a_search_body_in_utf8_or_without_a_charset_passes(
    gateway: Gateway, content_type: str
) -> None:
    gateway.grant(CLIENT)

    answer = post_search(gateway, "name=x", content_type)

    assert answer.status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "Patient"), ("PUT", "Patient/1"), ("PATCH", "Patient/1"), ("PUT", "Patient?name=x")],
)
@pytest.mark.parametrize(
    "content_type", [FORM, "multipart/form-data; boundary=x", "Application/X-WWW-Form-Urlencoded"]
)
def test_a_form_body_where_fhir_takes_a_resource_is_refused(
    gateway: Gateway, method: str, path: str, content_type: str
) -> None:
    """A servlet container reads a form-encoded POST body as request parameters: on a create
    it would carry search parameters the gateway never checked."""
    gateway.grant(CLIENT, access="write")

    answer = send(
        gateway,
        method,
        f"{BASE}/{path}",
        token(gateway),
        body=REACHING,
        headers={"Content-Type": content_type},
    )

    assert answer.status == 415
    assert answer.body["error"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "application/fhir+xml",
        "application/json-patch+json",
    ],
)
def test_a_resource_body_passes_on_a_write(gateway: Gateway, content_type: str) -> None:
    gateway.grant(CLIENT, access="write")

    answer = send(
        gateway,
        "PUT",
        f"{BASE}/Patient/1",
        token(gateway),
        body=b"{}",
        headers={"Content-Type": content_type},
    )

    assert answer.status == 200


@pytest.mark.parametrize(
    ("asked", "forwarded"), [(None, None), ("rt, ta", "RT,TA"), (" TA ", "TA")]
)
def test_the_callers_service_codes_header_reaches_the_upstream_only_as_checked(
    gateway: Gateway, asked: str | None, forwarded: str | None
) -> None:
    gateway.grant(CLIENT, service_codes=("RT", "TA"))
    headers = {} if asked is None else {"ServiceCodes": asked}

    answer = send(gateway, "GET", f"{BASE}/Patient/1", token(gateway), headers=headers)

    assert answer.status == 200
    assert answer.body["service_codes_header"] == forwarded
