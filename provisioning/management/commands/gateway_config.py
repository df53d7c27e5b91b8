"""Write the gateway's configuration before HAProxy starts: the signing keys from the
authorization server as PEM files, haproxy.cfg with the catalogue's scopes, and the map files
from the database."""

from __future__ import annotations

import time
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.gateway import signing_keys_from_jwks
from provisioning.reconcile import desired_entries, resource_map, scope_map
from provisioning.runner import gateway


class Command(BaseCommand):
    help = "Write haproxy.cfg, the signing keys and the map files of the gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", type=float, default=60, help="Seconds to wait for the AS.")

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["wait"]
        while True:
            try:
                response = requests.get(settings.OIDC_OP_JWKS_ENDPOINT, timeout=2)
                response.raise_for_status()
                break
            except requests.RequestException as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"The authorization server's keys: {exc}") from None
                time.sleep(0.5)
        gw = gateway()
        keys = signing_keys_from_jwks(response.json())
        gw.write_config(keys, scopes=scope_map())
        gw.write_map_files(desired_entries(), resource_map())
        self.stdout.write(
            f"gateway configured with {len(keys)} signing keys in {gw.config.directory}"
        )
