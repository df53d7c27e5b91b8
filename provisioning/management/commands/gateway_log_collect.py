"""Load the gateway's data-access log into the database, and keep following it.

``make run`` runs it (the Procfile's ``collector``). Each batch of lines commits with the
collector's position in the file, so stopping it anywhere (Ctrl-C, a kill, a crash) and starting
it again loads every line once. Several gateways (``GATEWAYS``): each one's log by default, or
one ``--log NAME=PATH`` each.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from provisioning.access_log import BATCH_BYTES, log_collect
from provisioning.settings import access_log_sources


def _source(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not (sep and name and path):
        raise CommandError(f"--log takes NAME=PATH, not {value!r}")
    return name, Path(path)


class Command(BaseCommand):
    help = "Load the gateway's data-access log (GATEWAY_ACCESS_LOG) and follow it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--log",
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="A gateway's access log and the name of its cursor (default: gateway=<the "
            "GATEWAY_ACCESS_LOG file>, or with GATEWAYS each gateway's access.log under its "
            "name). Repeat for several gateways.",
        )
        parser.add_argument(
            "--once", action="store_true", help="Load what is there, then stop (no following)."
        )
        parser.add_argument(
            "--batch-bytes",
            type=int,
            default=BATCH_BYTES,
            help="How much of the file one transaction loads at most (whole lines).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between looks once caught up (DATA_ACCESS_COLLECT_INTERVAL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sources = [_source(value) for value in options["log"]] or access_log_sources()
        interval = options["interval"] or settings.DATA_ACCESS_COLLECT_INTERVAL
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True  # the batch under way commits first

        if not options["once"]:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            for name, path in sources:
                self.stdout.write(f"collecting {path} as {name!r}", ending="\n")
            self.stdout.flush()
        while True:
            for name, path in sources:
                done = log_collect(
                    path=path,
                    source=name,
                    limit=options["batch_bytes"],
                    stopping=lambda: stopping,
                )
                if done.entries or done.skipped or options["once"]:
                    self.stdout.write(
                        f"{name}: {done.entries} entries loaded, {done.skipped} lines skipped"
                    )
                    self.stdout.flush()
            if options["once"] or stopping:
                return
            close_old_connections()
            deadline = time.monotonic() + interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(0.1, interval))
