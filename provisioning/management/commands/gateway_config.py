"""Write each gateway's configuration before HAProxy starts: the signing keys from the
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
from provisioning.settings import gateway_config


class Command(BaseCommand):
    help = "Write haproxy.cfg, the signing keys and the map files of each gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", type=float, default=60, help="Seconds to wait for the AS.")
        parser.add_argument(
            "--gateway", help="Only this gateway of GATEWAYS (default: every gateway)."
        )
        parser.add_argument(
            "--show-dir",
            action="store_true",
            help="Print the gateway's directory (--gateway, or the first) and write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["show_dir"]:
            try:
                config = gateway_config(options["gateway"])
            except KeyError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(str(config.root))
            return
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
        keys = signing_keys_from_jwks(response.json())
        entries, resources, scopes = desired_entries(), resource_map(), scope_map()
        for gw in gateway():
            if options["gateway"] not in (None, gw.config.name):
                continue
            gw.write_config(keys, scopes=scopes)
            gw.write_map_files(entries, resources)
            self.stdout.write(
                f"gateway {gw.config.name} configured with {len(keys)} signing keys "
                f"in {gw.config.directory}"
            )
