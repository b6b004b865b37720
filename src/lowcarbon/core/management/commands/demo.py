"""`lowcarbon demo`: load the Xiaolan demo data (once)."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the bilingual Xiaolan demo data (people, PV systems, a year of hourly readings) once."

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        from lowcarbon.demo import DEMO_PASSWORD, demo_logins, ensure_demo

        if not ensure_demo(stdout=self.stdout):
            self.stdout.write("The demo is already loaded.")
        for username, label in demo_logins():
            self.stdout.write(f"  {username:<12} {label}")
        self.stdout.write(f"Password: {DEMO_PASSWORD}")
