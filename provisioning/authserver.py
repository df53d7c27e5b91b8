"""The authorization-server adapter: OAuth 2.0 Dynamic Client Registration.

RFC 7591 registers a client with the initial access token; RFC 7592 reads, updates and deletes it
with the registration access token the server returned. Transient failures (no answer, 5xx, 429)
raise ``AuthServerUnavailable`` and are retried; a 4xx is the server refusing what we sent
(``AuthServerRejected``): retrying would only repeat it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings


class AuthServerUnavailable(Exception):
    """The server did not answer, or answered 5xx/429: try again later."""


class AuthServerRejected(Exception):
    """The server refused the request (4xx); the message is its own error text."""


class RegistrationGone(AuthServerRejected):
    """The registration no longer exists, or its access token is no longer valid (401/404)."""


#: The client_id the server gives a registration the portal made: this prefix and its
#: software_id (oidc/provider.mjs).
CLIENT_ID_PREFIX = "tilgang-"


@dataclass(frozen=True)
class PortalRegistration:
    client_id: str
    software_id: str


@dataclass(frozen=True)
class Registration:
    client_id: str
    registration_client_uri: str
    registration_access_token: str
    metadata: dict[str, Any]


def client_metadata(
    *, software_id: str, name: str, jwks: dict[str, Any], scopes: list[str]
) -> dict[str, Any]:
    """What the portal registers: client credentials with private_key_jwt, the vendor's public
    keys, and the union of the scopes its grants need.

    The assertion's algorithm follows the keys: every key carries its ``alg`` (the JWKS
    validator requires it), and the server takes only that one when all keys agree. Keys of
    several algorithms (a rotation from RSA to EC) leave it to the server, which checks each
    assertion against the key its ``kid`` names and the algorithms it enables."""
    metadata: dict[str, Any] = {
        "software_id": software_id,
        "client_name": name,
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
    }
    algorithms = {key.get("alg") for key in jwks.get("keys", [])}
    if len(algorithms) == 1 and None not in algorithms:
        metadata["token_endpoint_auth_signing_alg"] = algorithms.pop()
    if scopes:
        metadata["scope"] = " ".join(sorted(set(scopes)))
    return metadata


class AuthServerClient:
    def __init__(
        self,
        *,
        registration_endpoint: str | None = None,
        initial_access_token: str | None = None,
        registrations_endpoint: str | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        self.registration_endpoint = registration_endpoint or settings.OIDC_OP_REGISTRATION_ENDPOINT
        self.registrations_endpoint = (
            settings.OIDC_OP_REGISTRATIONS_ENDPOINT
            if registrations_endpoint is None
            else registrations_endpoint
        )
        self.initial_access_token = initial_access_token or settings.OIDC_INITIAL_ACCESS_TOKEN
        self.timeout = timeout or settings.PROVISIONING_HTTP_TIMEOUT
        self.session = requests.Session()

    def _call(self, method: str, url: str, token: str, body: Any = None) -> requests.Response:
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise AuthServerUnavailable(
                f"{method} {url}: no answer ({type(exc).__name__})"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise AuthServerUnavailable(f"{method} {url}: HTTP {response.status_code}")
        if response.status_code in (401, 404) and method != "POST":
            raise RegistrationGone(f"{method} {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise AuthServerRejected(f"HTTP {response.status_code}: {_error_text(response)}")
        return response

    def register(self, metadata: dict[str, Any]) -> Registration:
        body = self._call("POST", self.registration_endpoint, self.initial_access_token, metadata)
        return _registration(body.json())

    def read(self, uri: str, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", uri, token).json()
        return result

    def update(
        self, uri: str, token: str, client_id: str, metadata: dict[str, Any]
    ) -> Registration:
        # RFC 7592 2.2: the whole metadata, with the client_id, replaces what is registered.
        body = self._call("PUT", uri, token, {**metadata, "client_id": client_id})
        registration = _registration(body.json())
        if not registration.registration_access_token:
            return Registration(client_id, uri, token, registration.metadata)
        return registration

    def delete(self, uri: str, token: str) -> None:
        with contextlib.suppress(RegistrationGone):  # already gone: what we wanted
            self._call("DELETE", uri, token)

    def portal_registrations(self) -> list[PortalRegistration] | None:
        """The registrations the portal made, as the server lists them (client_id
        ``tilgang-<software_id>``, the software_id being the portal's id for the client); None
        when the server has no listing (``OIDC_OP_REGISTRATIONS_ENDPOINT`` empty). The listing
        is authorized by the initial access token."""
        if not self.registrations_endpoint:
            return None
        body = self._call("GET", self.registrations_endpoint, self.initial_access_token).json()
        found = []
        for item in body.get("registrations", []):
            client_id, software_id = item.get("client_id"), item.get("software_id")
            # The marker, checked here too: never touch a registration someone else made.
            if isinstance(software_id, str) and client_id == f"{CLIENT_ID_PREFIX}{software_id}":
                found.append(PortalRegistration(client_id=client_id, software_id=software_id))
        return found

    def unknown_remove(self, software_id: str) -> str:
        """Remove a registration the portal made whose registration access token it no longer
        holds (its database does not know it). Registering the same software_id again gives
        the same client_id (the registration is idempotent) with no keys and no scope, so it
        can get no token from then on, and a token to delete it with. Returns the client_id."""
        registration = self.register(
            {
                "software_id": software_id,
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": []},
            }
        )
        self.delete(registration.registration_client_uri, registration.registration_access_token)
        if registration.client_id != f"{CLIENT_ID_PREFIX}{software_id}":
            # Not the idempotent registration this relies on: the new one is deleted again.
            raise AuthServerRejected(
                f"registering software_id {software_id} again gave {registration.client_id}"
            )
        return registration.client_id


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error", "")
    description = body.get("error_description", "")
    return f"{error}: {description}".strip(": ")[:300]


def _registration(body: dict[str, Any]) -> Registration:
    return Registration(
        client_id=body["client_id"],
        registration_client_uri=body.get("registration_client_uri", ""),
        registration_access_token=body.get("registration_access_token", ""),
        metadata=body,
    )
