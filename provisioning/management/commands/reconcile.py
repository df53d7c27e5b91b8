"""Compare the database with the authorization server and the gateway, and heal what differs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provisioning.reconcile import reconcile


class Command(BaseCommand):
    help = (
        "Heal drift between the desired state and the authorization server and gateway. "
        "Exits non-zero when something could not be healed or another run held the lock."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconcile()
        for heal in report.heals:
            self.stdout.write(f"healed: {heal}")
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        self.stdout.write(
            f"{report.clients_checked} clients checked, {report.entries} gateway entries, "
            f"{len(report.heals)} heals, {len(report.errors)} errors"
        )
        if report.skipped:
            raise CommandError("another reconciler is running: nothing was compared")
        if report.errors:
            raise CommandError(f"{len(report.errors)} differences not healed")
