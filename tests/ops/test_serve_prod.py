"""`lowcarbon serve --prod` starts Gunicorn and answers: pages, and static files under content-hashed names,
compressed and cached for ever. It refuses, with the reason, the generated secret key, SQLite (unless allowed),
debug, and a database with migrations not applied."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest
from django.db import connection

from tests.ops.helpers import STRONG_KEY, env_for, fetch, free_port, lowcarbon, pg_url, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def serve_and_check(env: dict[str, str], *flags: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lowcarbon.cli",
            "serve",
            "--prod",
            "--port",
            str(port),
            "--workers",
            "2",
            *flags,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(base + "/", proc)
        status, headers, body = fetch(base + "/")
        assert status == 200
        assert headers["server"].startswith("gunicorn")
        assert headers["x-content-type-options"] == "nosniff"
        assert "小榄" in body.decode()
        css = re.search(r"/static/web/site\.[0-9a-f]{12}\.css", body.decode())
        assert css, "static files are not served under content-hashed names"
        status, headers, _ = fetch(base + css.group(0), {"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers.get("content-encoding") == "gzip"
        assert "immutable" in headers["cache-control"]
        assert fetch(base + "/dashboard/")[0] == 200
        assert fetch(base + "/no-such-page/")[0] == 404  # debug off: no technical page
        assert b"URLconf" not in fetch(base + "/no-such-page/")[2]
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
    assert proc.returncode == 0, out[-3000:]  # a graceful stop on SIGTERM
    assert "Shutting down" in out or "Handling signal: term" in out


def test_serve_prod_on_sqlite_with_the_flag(sqlite_site):
    serve_and_check(sqlite_site, "--allow-sqlite", "--allow-generated-secret")


@pytest.mark.postgres
def test_serve_prod_on_postgresql(django_db_setup, django_db_blocker, tmp_path):
    from lowcarbon.core.models import Parameter
    from lowcarbon.core.seed import load_default_parameters

    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]  # the migrated test database
        # a transactional test run before this one may have flushed the rows the migrations seeded
        load_default_parameters(Parameter)
    env = env_for(tmp_path / "var", pg_url(name), LOWCARBON_SECRET_KEY=STRONG_KEY)
    serve_and_check(env)


def test_serve_prod_refuses_the_generated_secret_and_sqlite(tmp_path):
    env = env_for(tmp_path / "var")
    done = lowcarbon("serve", "--prod", env=env, timeout=120)
    assert done.returncode == 1
    assert "LOWCARBON_SECRET_KEY" in done.stderr and "--allow-generated-secret" in done.stderr
    assert "--allow-sqlite" in done.stderr


def test_serve_prod_refuses_debug(tmp_path):
    env = env_for(tmp_path / "var", LOWCARBON_DEBUG="1", LOWCARBON_SECRET_KEY=secrets.token_urlsafe(50))
    done = lowcarbon("serve", "--prod", "--allow-sqlite", env=env, timeout=120)
    assert done.returncode == 1
    assert "LOWCARBON_DEBUG" in done.stderr


def test_serve_prod_refuses_unapplied_migrations_and_does_not_migrate(tmp_path):
    env = env_for(tmp_path / "var", LOWCARBON_SECRET_KEY=secrets.token_urlsafe(50))
    done = lowcarbon("serve", "--prod", "--allow-sqlite", env=env, timeout=120)
    assert done.returncode == 1
    assert "lowcarbon migrate" in done.stderr
    check = lowcarbon("showmigrations", "registry", env=env, timeout=120)
    assert "[X]" not in check.stdout
