"""`lowcarbon serve [--demo] [--host H] [--port P]`: migrate, collect static files, optionally load the demo,
then run the platform and print the URL and the demo log-ins.

`lowcarbon serve --prod [--workers N] [--allow-sqlite] [--allow-generated-secret]`: the production server
(lowcarbon.ops.prod: Gunicorn); it refuses to start on the generated development secret key, on SQLite, with debug on
or with migrations not applied, and never migrates by itself."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = "Start the platform (SQLite by default). --demo loads the bilingual Xiaolan demo data first."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--demo", action="store_true", help="load the demo data (once) before starting")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument(
            "--no-run", action="store_true", help="prepare everything but do not start the server"
        )
        parser.add_argument("--prod", action="store_true", help="production server (Gunicorn, debug off)")
        parser.add_argument(
            "--workers", type=int, default=0, help="--prod: worker processes (default 2×CPUs+1)"
        )
        parser.add_argument("--allow-sqlite", action="store_true", help="--prod: accept an SQLite database")
        parser.add_argument(
            "--allow-generated-secret",
            action="store_true",
            help="--prod: accept the secret key generated into the data directory",
        )

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if opts["prod"]:
            from lowcarbon.ops.prod import serve_prod

            serve_prod(self, opts)
            return
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        logins = None
        if opts["demo"]:
            from lowcarbon.demo import DEMO_PASSWORD, demo_logins, ensure_demo

            ensure_demo(stdout=self.stdout)
            logins = demo_logins()
        url = f"http://{opts['host']}:{opts['port']}/"
        db = settings.DATABASES["default"]
        self.stdout.write(self.style.SUCCESS(_("Xiaolan low-carbon platform: %(url)s") % {"url": url}))
        self.stdout.write(
            _("Database: %(engine)s %(name)s")
            % {"engine": db["ENGINE"].rsplit(".", 1)[-1], "name": db.get("NAME")}
        )
        if logins:
            self.stdout.write(_("Demo log-ins (password for all: %(pw)s):") % {"pw": DEMO_PASSWORD})
            for username, label in logins:
                self.stdout.write(f"  {username:<12} {label}")
        if opts["no_run"]:
            return
        # static files by WhiteNoise (collected, content-hashed names), not by runserver's finder-based handler
        call_command(
            "runserver", f"{opts['host']}:{opts['port']}", use_reloader=False, use_static_handler=False
        )
