"""Reliability tests: load, faults and attack. Tests that run `lowcarbon` as a separate process need a database
that process can see, so they get a committed database of their own (`scratch`): on the PostgreSQL pass a new
database on the same server (created from a migrated template, dropped afterwards), on the SQLite pass a database
file in a temporary LOWCARBON_VAR_DIR. The test process reads and alters it with the plain driver, as an operator
(or an attacker) with database access would."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOWCARBON = Path(sys.executable).with_name("lowcarbon")
_copies = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # type: ignore[no-untyped-def]
    """Many people are created here; their passwords need no strength in a test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _pg_url() -> str:
    return os.environ.get("LOWCARBON_TEST_DATABASE_URL_ACTIVE", "").replace(
        "postgresql+psycopg", "postgresql"
    )


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


class ScratchDB:
    """A committed, migrated database of the test's own, and the means to run `lowcarbon` against it."""

    def __init__(self, vendor: str, env: dict[str, str], target: str) -> None:
        self.vendor = vendor
        self.env = env
        self.target = target  # the PostgreSQL URL, or the SQLite file

    # -- processes ---------------------------------------------------------------------------------------------
    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[str]:
        """`lowcarbon ARGV...` started in the background, output captured."""
        return subprocess.Popen(
            [str(LOWCARBON), *argv],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,
        )

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`lowcarbon ARGV...` to the end: exit status and output."""
        return subprocess.run(
            [str(LOWCARBON), *argv], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def child(self, *argv: str) -> Any:
        """A preparation step of tests/reliability/world.py in its own process; returns the JSON it prints."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.reliability.world", *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    # -- direct access -----------------------------------------------------------------------------------------
    def connect(self) -> Any:
        if self.vendor == "postgresql":
            return psycopg.connect(self.target, autocommit=True)
        conn = sqlite3.connect(self.target, timeout=30, isolation_level=None)
        return conn

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query (placeholders written %s), read with a fresh connection: committed data only."""
        conn = self.connect()
        try:
            return list(conn.execute(self._sql(sql), params).fetchall())
        finally:
            conn.close()

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.query(sql, params)[0][0]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """One statement, committed at once."""
        conn = self.connect()
        try:
            conn.execute(self._sql(sql), params)
        finally:
            conn.close()

    def _sql(self, sql: str) -> str:
        return sql if self.vendor == "postgresql" else sql.replace("%s", "?")

    def writer_in_transaction(self) -> bool:
        """Whether another connection is inside a write transaction right now (PostgreSQL: has written in an open
        transaction; SQLite: holds the database's write lock)."""
        if self.vendor == "postgresql":
            return bool(
                self.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            )
        conn = sqlite3.connect(self.target, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()  # rolls our (empty) transaction back
        return False


@pytest.fixture(scope="session")
def _scratch_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], str]]:
    """Migrate one database with `lowcarbon migrate`; each test gets a copy of it."""
    env = dict(os.environ)
    env.pop("LOWCARBON_TEST_DATABASE_URL_ACTIVE", None)
    env.pop("LOWCARBON_DATABASE_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    base = tmp_path_factory.mktemp("scratch")
    env["LOWCARBON_VAR_DIR"] = str(base / "template")
    url = _pg_url()
    if not url:
        done = subprocess.run(
            [str(LOWCARBON), "migrate", "-v", "0"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield "sqlite", env, str(base)
        return
    name = f"{_db_name(url)}_reliability_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env["LOWCARBON_DATABASE_URL"] = _with_db(url, name)
        done = subprocess.run(
            [str(LOWCARBON), "migrate", "-v", "0"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield "postgresql", env, name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch(_scratch_template: tuple[str, dict[str, str], str]) -> Iterator[ScratchDB]:
    """A fresh copy of the migrated database, committed and visible to other processes; dropped afterwards."""
    vendor, template_env, where = _scratch_template
    env = dict(template_env)
    n = next(_copies)
    if vendor == "sqlite":
        var = Path(where) / f"copy{n}"
        var.mkdir()
        for f in Path(template_env["LOWCARBON_VAR_DIR"]).iterdir():
            if f.is_file():
                shutil.copy2(f, var / f.name)
        env["LOWCARBON_VAR_DIR"] = str(var)
        yield ScratchDB("sqlite", env, str(var / "lowcarbon.sqlite3"))
        return
    url = _pg_url()
    name = f"{where}_{n}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{where}"')
    try:
        env["LOWCARBON_DATABASE_URL"] = _with_db(url, name)
        yield ScratchDB("postgresql", env, _with_db(url, name))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
