"""Every key algorithm the JWKS validator accepts works end to end: the key is registered at the
real oidc-provider, the vendor's system gets a token with a private_key_jwt assertion signed with
that algorithm, and the token passes the real HAProxy."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenants.jwks import ALLOWED_ALGS, EC_CURVE_FOR_ALG, validate_jwks
from tenants.models import ClientKey
from tests.keys import b64url_uint, rsa_private_key, rsa_public_jwk
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
        return rsa_private_key(3), rsa_public_jwk(kid, seed=3, alg=alg)
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

    token = stack.access_token(vendor.client_id(), private, kid=public["kid"], algorithm=alg)
    through = stack.call(fhir(vendor.kommune, "Patient/1"), token)
    assert through.status_code == 200, through.text
