"""Every key algorithm the JWKS validator accepts works end to end: the key is registered at the
real oidc-provider, the vendor's system gets a token with a private_key_jwt assertion signed with
that algorithm, and the token passes the real HAProxy."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tenants.jwks import ALLOWED_ALGS, EC_CURVE_FOR_ALG, validate_jwks
from tenants.models import ClientKey
from tests.keys import b64url_uint, rsa_private_key
from tests.provisioning.stack import Stack, wait_for
from tests.provisioning.test_provisioning import DEADLINE, Vendor, active, fhir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CURVES = {"P-256": (ec.SECP256R1(), 32), "P-384": (ec.SECP384R1(), 48)}


def _key_pair(alg: str) -> tuple[Any, dict[str, Any]]:
    kid = f"{alg.lower()}-key"
    if ALLOWED_ALGS[alg] == "RSA":
        private_rsa = rsa_private_key(3)
        numbers = private_rsa.public_key().public_numbers()
        public = {
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
        }
        return private_rsa, public
    crv = EC_CURVE_FOR_ALG[alg]
    curve, size = CURVES[crv]
    private_ec = ec.generate_private_key(curve)
    point = private_ec.public_key().public_numbers()
    public = {
        "kty": "EC",
        "kid": kid,
        "alg": alg,
        "use": "sig",
        "crv": crv,
        "x": b64url_uint(point.x, size),
        "y": b64url_uint(point.y, size),
    }
    return private_ec, public


def _token(stack: Stack, client_id: str, private: Any, alg: str, kid: str) -> requests.Response:
    now = int(time.time())
    token_endpoint = f"{stack.provider.issuer}/token"
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assertion = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
        },
        pem,
        algorithm=alg,
        headers={"kid": kid},
    )
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    return requests.post(token_endpoint, data=data, timeout=10)


@pytest.mark.parametrize("alg", sorted(ALLOWED_ALGS))
def test_a_key_of_every_accepted_algorithm_registers_gets_a_token_and_passes_the_gateway(
    stack: Stack, alg: str
) -> None:
    stack.start_worker()
    vendor = Vendor()
    private, public = _key_pair(alg)
    [validated] = validate_jwks({"keys": [public]})
    ClientKey.objects.filter(client=vendor.client).delete()
    ClientKey.objects.create(
        client=vendor.client,
        kid=validated.kid,
        kty=validated.kty,
        alg=validated.alg,
        jwk=validated.jwk,
    )

    [grant] = vendor.order("patient.read")
    wait_for(lambda: active(grant), timeout=DEADLINE, what="grant active")

    response = _token(stack, vendor.client_id(), private, alg, public["kid"])
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    through = stack.call(fhir(vendor.kommune, "Patient/1"), token)
    assert through.status_code == 200, through.text
