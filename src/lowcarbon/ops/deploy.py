"""Is this installation fit to serve the town? Django's deployment checks plus the platform's own: a real secret key,
a reachable database with every migration applied, an intact registry journal, writable data directories, set host
names and collected static files. Used by `lowcarbon check-deploy` and, in part, by `lowcarbon serve --prod`."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core import checks as django_checks
from django.db import DatabaseError, connection
from django.utils.translation import gettext as _

#: the hosts settings.py allows when LOWCARBON_ALLOWED_HOSTS is not set
DEV_HOSTS = {"localhost", "127.0.0.1", "[::1]", "testserver"}
#: Django deployment checks that concern serving over HTTPS, waived by --allow-http
HTTPS_CHECKS = {"security.W004", "security.W008", "security.W012", "security.W016"}
#: Django deployment checks that are advice, not a fault (HSTS preload is a commitment to browsers' lists)
ADVISORY_CHECKS = {"security.W021"}


@dataclass
class Outcome:
    """One line of the deployment report: a stable `key`, the translated `name`; `status` is "pass", "fail" or
    "note" (shown, never a failure)."""

    key: str
    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def generated_key_file() -> Path:
    return Path(getattr(settings, "VAR_DIR", Path.cwd() / "var")) / "secret_key"


def secret_key_problem() -> str:
    """Why the secret key is not fit for production ("" when it is)."""
    key = str(settings.SECRET_KEY or "")
    if not key:
        return _("no secret key is set; set LOWCARBON_SECRET_KEY")
    path = generated_key_file()
    try:
        generated = path.read_text().strip() if path.exists() else ""
    except OSError:
        generated = ""
    if generated and key == generated:
        return _(
            "the secret key is the development key generated into %(path)s; set LOWCARBON_SECRET_KEY to a new "
            "random value"
        ) % {"path": path}
    if key.startswith("django-insecure") or len(key) < 50 or len(set(key)) < 5:
        return _("the secret key is too short or too simple (at least 50 random characters)")
    return ""


def is_sqlite() -> bool:
    return str(settings.DATABASES["default"]["ENGINE"]).endswith("sqlite3")


def unapplied_migrations() -> list[str]:
    """app.migration names not applied to the database (raises DatabaseError when it cannot be read)."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]


def _writable(path: Path) -> str:
    """ "" when a file can be created in `path` (created if missing), else why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return ""


def django_deploy_outcomes(*, allow_http: bool) -> list[Outcome]:
    """Django's system checks and its security deployment checks (`check --deploy`); other apps' deployment
    advice (drf-spectacular's schema warnings) is for developers and left out."""
    found = [
        *django_checks.run_checks(),
        *django_checks.run_checks(tags=[django_checks.Tags.security], include_deployment_checks=True),
    ]
    messages = []
    for m in found:
        if m.level >= django_checks.WARNING and not m.is_silenced() and m not in messages:
            messages.append(m)
    if not messages:
        return [Outcome("django", _("Django deployment checks"), "pass", _("no warnings"))]
    out = []
    for m in messages:
        text = str(m.msg).split("\n")[0].split(". ")[0].rstrip(".")
        if m.id in ADVISORY_CHECKS:
            out.append(Outcome(m.id or "django", f"Django {m.id}", "note", text))
        elif allow_http and m.id in HTTPS_CHECKS:
            out.append(
                Outcome(
                    m.id or "django",
                    f"Django {m.id}",
                    "note",
                    _("plain HTTP allowed (--allow-http): %(msg)s") % {"msg": text},
                )
            )
        else:
            out.append(Outcome(m.id or "django", f"Django {m.id}", "fail", text))
    return out


def platform_outcomes(*, allow_sqlite: bool) -> list[Outcome]:
    out: list[Outcome] = []
    problem = secret_key_problem()
    out.append(
        Outcome(
            "secret_key",
            _("secret key"),
            "fail" if problem else "pass",
            problem or _("set, not the generated one"),
        )
    )

    if os.environ.get("LOWCARBON_FIELD_KEY") or getattr(settings, "FIELD_KEY", ""):
        out.append(Outcome("field_key", _("field key"), "pass", _("LOWCARBON_FIELD_KEY is set")))
    else:
        out.append(
            Outcome(
                "field_key",
                _("field key"),
                "note",
                _(
                    "LOWCARBON_FIELD_KEY is not set: ID-card numbers are protected with a key derived from the "
                    "secret key, so changing the secret key would make them unreadable"
                ),
            )
        )

    hosts = [h for h in settings.ALLOWED_HOSTS if h]
    if not hosts or "*" in hosts:
        out.append(
            Outcome(
                "allowed_hosts",
                _("allowed hosts"),
                "fail",
                _("LOWCARBON_ALLOWED_HOSTS must name the site's host names"),
            )
        )
    elif set(hosts) <= DEV_HOSTS:
        out.append(
            Outcome(
                "allowed_hosts",
                _("allowed hosts"),
                "fail",
                _("only the development defaults (%(hosts)s); set LOWCARBON_ALLOWED_HOSTS")
                % {"hosts": ", ".join(hosts)},
            )
        )
    else:
        out.append(Outcome("allowed_hosts", _("allowed hosts"), "pass", ", ".join(hosts)))

    db = settings.DATABASES["default"]
    engine = str(db["ENGINE"]).rsplit(".", 1)[-1]
    if is_sqlite():
        status = "note" if allow_sqlite else "fail"
        detail = _(
            "SQLite file %(name)s: one server only, no concurrent writers; use PostgreSQL (LOWCARBON_DATABASE_URL)"
        ) % {"name": db.get("NAME")}
        if allow_sqlite:
            detail = _("SQLite allowed (--allow-sqlite): %(name)s") % {"name": db.get("NAME")}
        out.append(Outcome("database_engine", _("database engine"), status, detail))
    else:
        out.append(
            Outcome(
                "database_engine",
                _("database engine"),
                "pass",
                f"{engine} {db.get('HOST') or ''} {db.get('NAME')}".strip(),
            )
        )

    reachable = False
    try:
        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        reachable = True
        out.append(Outcome("database", _("database reachable"), "pass", _("connected")))
    except Exception as exc:  # any driver error means: not reachable
        out.append(
            Outcome(
                "database",
                _("database reachable"),
                "fail",
                str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__,
            )
        )

    migrated = False
    if reachable:
        try:
            pending = unapplied_migrations()
        except DatabaseError as exc:
            out.append(Outcome("migrations", _("migrations applied"), "fail", str(exc).strip()[:200]))
        else:
            if pending:
                out.append(
                    Outcome(
                        "migrations",
                        _("migrations applied"),
                        "fail",
                        _("%(n)d not applied (%(names)s); run lowcarbon migrate")
                        % {
                            "n": len(pending),
                            "names": ", ".join(pending[:3]) + (" …" if len(pending) > 3 else ""),
                        },
                    )
                )
            else:
                migrated = True
                out.append(Outcome("migrations", _("migrations applied"), "pass", _("all applied")))
    else:
        out.append(
            Outcome(
                "migrations", _("migrations applied"), "fail", _("not checked: the database is not reachable")
            )
        )

    out.append(_journal_outcome(reachable, migrated))

    for key, label, path in (
        ("var_dir", _("data directory writable"), Path(settings.VAR_DIR)),
        ("media_dir", _("media directory writable"), Path(settings.MEDIA_ROOT)),
    ):
        problem = _writable(path)
        out.append(Outcome(key, label, "fail" if problem else "pass", problem or str(path)))

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if isinstance(staticfiles_storage, ManifestFilesMixin) and not manifest.exists():
        out.append(
            Outcome(
                "static",
                _("static files collected"),
                "fail",
                _("%(path)s is missing; run lowcarbon collectstatic") % {"path": manifest},
            )
        )
    else:
        out.append(Outcome("static", _("static files collected"), "pass", str(settings.STATIC_ROOT)))
    return out


def _journal_outcome(reachable: bool, migrated: bool) -> Outcome:
    key, name = "journal", _("registry journal verifies")
    if not (reachable and migrated):
        return Outcome(key, name, "fail", _("not checked: the database is not reachable or not migrated"))
    from lowcarbon.registry import journal
    from lowcarbon.registry.management.commands.ledger import reason_text

    try:
        result = journal.verify_journal()
    except (ValueError, DatabaseError) as exc:
        return Outcome(key, name, "fail", str(exc)[:200])
    if result.ok:
        return Outcome(
            key,
            name,
            "pass",
            _("%(n)d entries, head %(hash)s") % {"n": result.count, "hash": (result.head_hash or "")[:16]},
        )
    return Outcome(
        key,
        name,
        "fail",
        _("broken at entry %(seq)s: %(why)s; run lowcarbon ledger verify")
        % {"seq": result.first_bad_seq, "why": reason_text(result.reason)},
    )


def run_all(*, allow_sqlite: bool = False, allow_http: bool = False) -> list[Outcome]:
    """Every check, Django's first."""
    return [*django_deploy_outcomes(allow_http=allow_http), *platform_outcomes(allow_sqlite=allow_sqlite)]
