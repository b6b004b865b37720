"""`lowcarbon backup` / `lowcarbon restore` on SQLite and PostgreSQL: an archive taken while the platform is written
to restores into an empty installation with every table's row count, every media file and the journal head of the
backup; restore refuses an installation that has data unless --force, and reports a backup that does not match."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.ops.conftest import make_site
from tests.ops.helpers import ACTIVE_PG, WRITER, env_for, lowcarbon, pg_admin, pg_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile("manifest.json").read())


def backup_while_writing(env: dict[str, str], archive: Path, kind: str, target: str) -> int:
    """Back up while another process inserts sessions; returns how many it inserted."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, target, "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)
        done = lowcarbon("backup", str(archive), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    return int(out.strip())


def check_round_trip(source_env: dict[str, str], target_env: dict[str, str], archive: Path, sessions) -> None:
    manifest = manifest_of(archive)
    assert manifest["format"] == "lowcarbon-backup"
    assert manifest["journal_head"]["seq"] > 0
    assert manifest["tables"]["registry_journalentry"] == manifest["journal_head"]["seq"]
    assert any(name.startswith("evidence/") for name in manifest["media"])
    assert 0 < manifest["tables"]["django_session"] - sessions["before"] <= sessions["written"]

    done = lowcarbon("restore", str(archive), env=target_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert manifest["journal_head"]["hash"] in done.stdout  # `ledger verify` ran and named the saved head
    media = Path(target_env["LOWCARBON_VAR_DIR"]) / "media" / "evidence" / "2025" / "01" / "并网验收单.pdf"
    assert media.read_bytes() == b"%PDF-1.4 test evidence \x00\xff"

    again = lowcarbon("restore", str(archive), env=target_env)
    assert again.returncode == 1
    assert "--force" in again.stderr

    forced = lowcarbon("restore", "--force", str(archive), env=target_env)
    assert forced.returncode == 0, forced.stdout + forced.stderr

    verify = lowcarbon("ledger", "verify", env=target_env)
    assert verify.returncode == 0 and manifest["journal_head"]["hash"] in verify.stdout


def tampered(archive: Path, out: Path, table: str) -> Path:
    """A copy of the archive whose manifest claims one more row in `table` than was saved."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest["tables"][table] += 1
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


# ---------------------------------------------------------------------------------------------------------------
# SQLite


def test_sqlite_backup_while_written_restores_exactly(sqlite_site, tmp_path):
    db = Path(sqlite_site["LOWCARBON_VAR_DIR"]) / "lowcarbon.sqlite3"
    before = sqlite3.connect(db).execute("SELECT count(*) FROM django_session").fetchone()[0]
    archive = tmp_path / "site.tar.gz"
    written = backup_while_writing(sqlite_site, archive, "sqlite", str(db))
    target = env_for(tmp_path / "restored")
    check_round_trip(sqlite_site, target, archive, {"before": before, "written": written})
    restored = sqlite3.connect(tmp_path / "restored" / "lowcarbon.sqlite3")
    assert restored.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_restore_names_a_table_whose_rows_differ_from_the_manifest(sqlite_site, tmp_path):
    archive = tmp_path / "site.tar.gz"
    assert lowcarbon("backup", str(archive), env=sqlite_site).returncode == 0
    bad = tampered(archive, tmp_path / "bad.tar.gz", "registry_serialblock")
    done = lowcarbon("restore", str(bad), env=env_for(tmp_path / "restored"))
    assert done.returncode == 1
    assert "registry_serialblock" in done.stderr


def test_restore_refuses_what_is_not_a_backup_and_changes_nothing(sqlite_site, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    target = tmp_path / "restored"
    done = lowcarbon("restore", str(junk), env=env_for(target))
    assert done.returncode == 1
    assert str(junk) in done.stderr
    assert not (target / "media").exists() or not any((target / "media").rglob("*"))


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture(scope="module")
def pg_site(tmp_path_factory):
    if not ACTIVE_PG:
        pytest.skip("needs PostgreSQL")
    name = f"h_ops_src_{os.getpid()}"
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield make_site(tmp_path_factory.mktemp("pg_site") / "var", pg_url(name)), name
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def empty_pg_database():
    name = f"h_ops_dst_{os.getpid()}"
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_postgres_backup_while_written_restores_exactly(pg_site, empty_pg_database, tmp_path):
    import psycopg

    env, name = pg_site
    with psycopg.connect(pg_url(name)) as conn:
        before = conn.execute("SELECT count(*) FROM django_session").fetchone()[0]
    archive = tmp_path / "site.tar.gz"
    written = backup_while_writing(env, archive, "postgresql", pg_url(name))
    target = env_for(tmp_path / "restored", pg_url(empty_pg_database))
    check_round_trip(env, target, archive, {"before": before, "written": written})
    # the journal's append function (a migration's SQL) came back too: the restored registry keeps working
    check = lowcarbon("check-deploy", "--json", "--allow-http", env=target)
    rows = {row["key"]: row for row in json.loads(check.stdout)["checks"]}
    assert rows["journal"]["status"] == "pass" and rows["migrations"]["status"] == "pass"


@pytest.mark.postgres
def test_postgres_restore_refuses_a_sqlite_backup(sqlite_archive_for_pg, empty_pg_database, tmp_path):
    done = lowcarbon(
        "restore", str(sqlite_archive_for_pg), env=env_for(tmp_path / "r", pg_url(empty_pg_database))
    )
    assert done.returncode == 1
    assert "sqlite" in done.stderr and "postgresql" in done.stderr


@pytest.fixture
def sqlite_archive_for_pg(tmp_path):
    """A small SQLite backup made in the PostgreSQL pass (a migrated, empty installation)."""
    env = env_for(tmp_path / "sqlite")
    assert lowcarbon("migrate", "-v0", env=env).returncode == 0
    archive = tmp_path / "sqlite.tar.gz"
    done = lowcarbon("backup", str(archive), env=env)
    assert done.returncode == 0, done.stderr
    return archive
