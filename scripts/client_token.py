#!/usr/bin/env python
"""Get an access token the way a vendor's system does: client credentials, authenticated with a
private_key_jwt assertion signed by the vendor's own private key (which never leaves the vendor).

    python scripts/client_token.py --client-id tilgang-... --key private.pem --kid key-1 \\
        [--issuer http://127.0.0.1:9000] [--scope "nhn:ksp/patient.read"]

prints the access token. Needs only `requests` and `pyjwt[crypto]`.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import jwt
import requests

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def fetch_token(
    *, issuer: str, client_id: str, key_pem: bytes, kid: str, scope: str | None = None
) -> str:
    token_endpoint = f"{issuer.rstrip('/')}/token"
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
        },
        key_pem,
        algorithm="RS256",
        headers={"kid": kid},
    )
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope:
        data["scope"] = scope
    response = requests.post(token_endpoint, data=data, timeout=10)
    if response.status_code != 200:
        raise SystemExit(f"token request refused: {response.status_code} {response.text}")
    token: str = response.json()["access_token"]
    return token


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default="http://127.0.0.1:9000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--key", required=True, type=Path, help="the private key (PEM)")
    parser.add_argument("--kid", required=True, help="the key's kid, as registered")
    parser.add_argument("--scope")
    return parser


if __name__ == "__main__":
    args = arguments().parse_args()
    print(
        fetch_token(
            issuer=args.issuer,
            client_id=args.client_id,
            key_pem=args.key.read_bytes(),
            kid=args.kid,
            scope=args.scope,
        )
    )
