"""Running the `lowcarbon` command in a process of its own, against a data directory and database of the test's."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ACTIVE_PG = os.environ.get("LOWCARBON_TEST_DATABASE_URL_ACTIVE", "")

#: a strong secret key for processes that must pass the production checks
STRONG_KEY = secrets.token_urlsafe(50)

#: writes rows into django_session for `seconds`, printing how many it committed
WRITER = r"""
import sys, time
kind, target, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if kind == "sqlite":
    import sqlite3
    db = sqlite3.connect(target, timeout=30, isolation_level=None)
    mark = "?"
else:
    import psycopg
    db = psycopg.connect(target, autocommit=True)
    mark = "%s"
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    db.execute(f"INSERT INTO django_session (session_key, session_data, expire_date) VALUES ({mark}, 'x', '2030-01-01 00:00:00')", [f"w{n:08d}"])
    n += 1
print(n)
"""


def env_for(var_dir: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of a child process: none of the test run's LOWCARBON_ variables, its own data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWCARBON_")}
    env["LOWCARBON_VAR_DIR"] = str(var_dir)
    if database_url:
        env["LOWCARBON_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def lowcarbon(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lowcarbon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_url(dbname: str) -> str:
    """The test PostgreSQL server's URL with another database name."""
    parts = urlsplit(ACTIVE_PG)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def pg_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(ACTIVE_PG.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(statement)


def wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 300) -> None:
    """Until `url` answers (any HTTP status), or fail with the server's output."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the server exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)  # noqa: S310 - a local test server
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url} within {seconds} s")


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
