#!/usr/bin/env python
"""Use the portal's API without a browser, as an automation client: get a token with the
client's private key, then list the grants the client's organisation may see.

    python scripts/api_example.py --client-id tilgang-... --key private.pem --kid key-1 \\
        [--issuer http://127.0.0.1:9000] [--portal http://127.0.0.1:8000]
"""

from __future__ import annotations

import requests
from client_token import arguments, fetch_token


def main() -> None:
    parser = arguments()
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    token = fetch_token(
        issuer=args.issuer, client_id=args.client_id, key_pem=args.key.read_bytes(), kid=args.kid
    )
    response = requests.get(
        f"{args.portal.rstrip('/')}/api/v1/grants/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    for grant in response.json()["results"]:
        print(f"{grant['kommune']} {grant['scope']} {grant['status']}")
    print(f"{response.json()['count']} grants")


if __name__ == "__main__":
    main()
