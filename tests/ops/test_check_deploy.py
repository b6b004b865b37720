"""`lowcarbon check-deploy`: a table of pass/fail with the reason, exit code 1 on any failure; it finds the generated
development secret key, an unapplied migration, a tampered journal, development-only host names and SQLite."""

from __future__ import annotations

import io
import json
import secrets

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import translation

from lowcarbon.ops.deploy import generated_key_file
from lowcarbon.registry import journal
from tests.registry.tamper import make_journal_fields_plain, payload_update

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def production(settings, tmp_path):
    """Settings a production installation would have: every check passes (SQLite accepted by the flag)."""
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    settings.FIELD_KEY = secrets.token_urlsafe(32)
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["lowcarbon.xiaolan.example"]
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "var" / "media"
    return settings


def run(*args: str) -> tuple[int, dict[str, dict]]:
    out = io.StringIO()
    code = 0
    try:
        call_command("check_deploy", "--json", "--allow-sqlite", *args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    rows = {row["key"]: row for row in json.loads(out.getvalue())["checks"]}
    return code, rows


def failed(rows: dict[str, dict]) -> set[str]:
    return {key for key, row in rows.items() if row["status"] == "fail"}


def test_a_production_installation_passes(production):
    code, rows = run()
    assert failed(rows) == set(), rows
    assert code == 0
    assert rows["journal"]["status"] == "pass"


def test_the_generated_secret_key_fails(production):
    key_file = generated_key_file()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(production.SECRET_KEY)
    code, rows = run()
    assert code == 1
    assert failed(rows) == {"secret_key"}
    assert "LOWCARBON_SECRET_KEY" in rows["secret_key"]["detail"]


def test_a_short_secret_key_fails(production):
    production.SECRET_KEY = "changeme"
    code, rows = run()
    assert code == 1
    assert "secret_key" in failed(rows)


def test_an_unapplied_migration_fails_and_names_it(production):
    last = MigrationRecorder.Migration.objects.filter(app="registry").order_by("-name").first()
    MigrationRecorder.Migration.objects.filter(pk=last.pk).delete()
    code, rows = run()
    assert code == 1
    assert "migrations" in failed(rows)
    assert f"registry.{last.name}" in rows["migrations"]["detail"]


def test_a_tampered_journal_fails_and_names_the_entry(production):
    with transaction.atomic():
        for n in range(3):
            journal.append("note", {"n": n})
    assert run()[0] == 0
    make_journal_fields_plain(connection.vendor, connection.cursor().execute)
    with connection.cursor() as cur:
        cur.execute(payload_update(connection.vendor), ['{"n": 99}', 2])
    code, rows = run()
    assert code == 1
    assert failed(rows) == {"journal"}
    assert "2" in rows["journal"]["detail"]


def test_debug_and_plain_http_fail_unless_http_is_allowed(production):
    production.DEBUG = True
    production.SESSION_COOKIE_SECURE = False
    code, rows = run()
    assert code == 1
    assert {"security.W018", "security.W012"} <= failed(rows)
    production.DEBUG = False
    code, rows = run("--allow-http")
    assert code == 0
    assert rows["security.W012"]["status"] == "note"


def test_development_hosts_and_sqlite_fail(production):
    production.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_deploy", "--json", stdout=out)
    assert exit_info.value.code == 1
    rows = {row["key"]: row for row in json.loads(out.getvalue())["checks"]}
    assert {"allowed_hosts"} <= failed(rows)
    if rows["database_engine"]["detail"].lower().startswith("sqlite"):
        assert "database_engine" in failed(rows)


def test_the_table_names_each_failure_with_its_reason(production):
    production.SECRET_KEY = "changeme"
    out = io.StringIO()
    with translation.override("en"), pytest.raises(SystemExit):
        call_command("check_deploy", "--allow-sqlite", stdout=out, no_color=True)
    text = out.getvalue()
    line = next(row for row in text.splitlines() if row.startswith("secret key"))
    assert "FAIL" in line and "50" in line
    assert "2 of 12 checks failed" in text  # the short key fails ours and Django's security.W009
