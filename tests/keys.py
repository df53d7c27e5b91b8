"""Real key pairs for tests: the public half as a JWK, the private half kept by the "vendor"."""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url_uint(number: int, length: int | None = None) -> str:
    raw = number.to_bytes(length or (number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@functools.cache
def rsa_private_key(seed: int = 0) -> rsa.RSAPrivateKey:
    """A 2048-bit key per seed, made once per test run (key generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_public_jwk(kid: str = "key-1", seed: int = 0, **extra: Any) -> dict[str, Any]:
    numbers = rsa_private_key(seed).public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        "n": b64url_uint(numbers.n),
        "e": b64url_uint(numbers.e),
        **extra,
    }


def rsa_private_jwk(kid: str = "key-1", seed: int = 0) -> dict[str, Any]:
    """The whole key, private members included: what a vendor must never upload."""
    private = rsa_private_key(seed).private_numbers()
    return {
        **rsa_public_jwk(kid, seed),
        "d": b64url_uint(private.d),
        "p": b64url_uint(private.p),
        "q": b64url_uint(private.q),
        "dp": b64url_uint(private.dmp1),
        "dq": b64url_uint(private.dmq1),
        "qi": b64url_uint(private.iqmp),
    }


def ec_public_jwk(kid: str = "ec-1") -> dict[str, Any]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "alg": "ES256",
        "crv": "P-256",
        "x": b64url_uint(numbers.x, 32),
        "y": b64url_uint(numbers.y, 32),
    }


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys) or [rsa_public_jwk()]}
