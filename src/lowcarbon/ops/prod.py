"""The production server: Gunicorn (pre-forked workers, each serving several requests at once in threads) running
the platform's WSGI application, static files served by WhiteNoise from the collected, content-hashed and
pre-compressed copies. Threads let the concurrent registry transfers a worker receives be settled together
(registry.ledger.do_transfer)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from django.utils.translation import gettext as _
from gunicorn.app.base import BaseApplication

from lowcarbon.ops.deploy import is_sqlite, secret_key_problem, unapplied_migrations


def default_workers() -> int:
    """Gunicorn's rule of thumb, 2 × CPUs + 1, at most 12 (each worker holds the whole platform in memory)."""
    env = os.environ.get("LOWCARBON_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return min(2 * (os.cpu_count() or 1) + 1, 12)


def default_threads() -> int:
    """Request threads per worker: LOWCARBON_THREADS, by default 4."""
    env = os.environ.get("LOWCARBON_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return 4


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings of newer Gunicorn versions are skipped on older ones
                self.cfg.set(key, value)

    def load(self) -> Any:
        from lowcarbon.config.wsgi import application

        return application


def run(host: str, port: str, workers: int, timeout: int = 120) -> None:
    """Serve until stopped (SIGTERM/SIGINT: graceful shutdown). The application is loaded once before the workers
    are forked; database connections opened while preparing are closed so no worker inherits one."""
    connections.close_all()
    bind = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": workers,
        "worker_class": "gthread",
        "threads": default_threads(),
        "timeout": timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        "preload_app": True,
        "max_requests": 2000,
        "max_requests_jitter": 200,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "lowcarbon",
        "control_socket_disable": True,
        "forwarded_allow_ips": os.environ.get("LOWCARBON_FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
    }
    shm = "/dev/shm"  # noqa: S108 - Gunicorn's advice: worker heartbeat files in memory, not on a slow disk
    if os.path.isdir(shm):
        options["worker_tmp_dir"] = shm
    _Server(options).run()


def serve_prod(command: BaseCommand, opts: dict[str, Any]) -> None:
    """`serve --prod`: refuse an unfit installation with the reason, collect static files, start Gunicorn."""
    problems = []
    if settings.DEBUG:
        problems.append(_("debug is on (LOWCARBON_DEBUG); the production server runs with debug off"))
    secret = secret_key_problem()
    if secret and not opts.get("allow_generated_secret"):
        problems.append(
            _("%(problem)s (or pass --allow-generated-secret to accept it knowingly)") % {"problem": secret}
        )
    if is_sqlite() and not opts.get("allow_sqlite"):
        problems.append(
            _(
                "the database is SQLite (%(name)s); set LOWCARBON_DATABASE_URL to PostgreSQL, or pass "
                "--allow-sqlite for a single small server"
            )
            % {"name": settings.DATABASES["default"].get("NAME")}
        )
    if problems:
        raise CommandError(_("Not starting the production server:") + "\n  - " + "\n  - ".join(problems))
    try:
        pending = unapplied_migrations()
    except DatabaseError as exc:
        raise CommandError(_("Cannot reach the database: %(error)s") % {"error": str(exc).strip()})
    if pending:
        raise CommandError(
            _(
                "Not starting the production server: %(n)d migrations are not applied; run lowcarbon migrate first."
            )
            % {"n": len(pending)}
        )
    call_command("collectstatic", interactive=False, verbosity=0)
    if opts.get("demo"):
        from lowcarbon.demo import ensure_demo

        ensure_demo(stdout=command.stdout)
    workers = opts.get("workers") or default_workers()
    db = settings.DATABASES["default"]
    command.stdout.write(
        command.style.SUCCESS(
            _("Xiaolan low-carbon platform (production, %(workers)d workers): http://%(host)s:%(port)s/")
            % {"workers": workers, "host": opts["host"], "port": opts["port"]}
        )
    )
    command.stdout.write(
        _("Database: %(engine)s %(name)s")
        % {"engine": str(db["ENGINE"]).rsplit(".", 1)[-1], "name": db.get("NAME")}
    )
    command.stdout.flush()
    if opts.get("no_run"):
        return
    run(opts["host"], str(opts["port"]), workers)
