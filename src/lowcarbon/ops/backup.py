"""Backup and restore of a whole installation: the database and the media files (uploads, evidence, reports).

The archive is a gzip-compressed tar holding, in this order:
  manifest.json       format, version, time, database engine, row count of every table, journal head (seq and hash),
                      applied migrations, and the size and SHA-256 of every media file
  database.sqlite3    SQLite: a consistent copy made with SQLite's online backup API (the server may keep running)
  database.pgdump     PostgreSQL: `pg_dump --format=custom`, taken in the same snapshot as the manifest's counts
  media/...           the media files
Row counts and the journal head are read from the very snapshot that is archived, so a restore can prove that it
brought back exactly what was saved. The secret key and the field key are deliberately not in the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from lowcarbon.metering import partitions
from lowcarbon.registry.models import JournalEntry

FORMAT = "lowcarbon-backup"
VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
JOURNAL_TABLE = JournalEntry._meta.db_table


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why, for the user."""


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    count_mismatches: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    media_problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# helpers


def vendor() -> str:
    return str(connection.vendor)


def _sqlite_path() -> str:
    return str(settings.DATABASES["default"]["NAME"])


def _sqlite_in_memory() -> bool:
    return bool(connection.is_in_memory_db()) if vendor() == "sqlite" else False


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


_PG_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname"""


def _counts(cur: Any, tables: list[str]) -> dict[str, int]:
    out = {}
    for table in tables:
        cur.execute(f"SELECT count(*) FROM {_q(table)}")  # noqa: S608 - names from the catalogue, quoted
        out[table] = int(cur.fetchone()[0])
    return out


def _journal_head(cur: Any, tables: list[str]) -> dict[str, Any]:
    if JOURNAL_TABLE not in tables:
        return {"seq": 0, "hash": ""}
    cur.execute(f"SELECT seq, hash FROM {_q(JOURNAL_TABLE)} ORDER BY seq DESC LIMIT 1")  # noqa: S608
    row = cur.fetchone()
    return {"seq": int(row[0]), "hash": str(row[1])} if row else {"seq": 0, "hash": ""}


def _migrations(cur: Any, tables: list[str]) -> list[str]:
    if "django_migrations" not in tables:
        return []
    cur.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return [f"{app}.{name}" for app, name in cur.fetchall()]


def _pg_env() -> dict[str, str]:
    """libpq environment for pg_dump / pg_restore from the DATABASES setting."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if db.get(key):
            env[var] = str(db[key])
    env["PGDATABASE"] = str(db["NAME"])
    for option, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT")):
        if db.get("OPTIONS", {}).get(option):
            env[var] = str(db["OPTIONS"][option])
    return env


def _run_pg_tool(args: list[str]) -> None:
    tool = args[0]
    if shutil.which(tool) is None:
        raise BackupError(
            _("%(tool)s is not installed (Debian/Ubuntu: apt-get install postgresql-client)") % {"tool": tool}
        )
    proc = subprocess.run(args, env=_pg_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(
            _("%(tool)s failed: %(error)s")
            % {"tool": tool, "error": proc.stderr.strip()[-2000:] or proc.returncode}
        )


def _media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _media_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# backup


def create_backup(target: Path) -> dict[str, Any]:
    """Write the archive to `target` (via a temporary file renamed at the end, so a failed backup leaves no
    half-written archive under the final name). Returns the manifest."""
    target = target.resolve()
    if target.is_dir():
        raise BackupError(_("%(path)s is a directory; give a file name") % {"path": target})
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lowcarbon-backup-") as tmp:
        work = Path(tmp)
        if vendor() == "sqlite":
            member, dump, info = SQLITE_MEMBER, work / SQLITE_MEMBER, _backup_sqlite(work / SQLITE_MEMBER)
        elif vendor() == "postgresql":
            member, dump, info = PG_MEMBER, work / PG_MEMBER, _backup_postgres(work / PG_MEMBER)
        else:
            raise BackupError(
                _("backups support SQLite and PostgreSQL, not %(vendor)s") % {"vendor": vendor()}
            )
        root = _media_root()
        media = {
            str(p.relative_to(root)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in _media_files(root)
        }
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "engine": vendor(),
            "database_file": member,
            **info,
            "media": media,
        }
        partial = work / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
            entry = tarfile.TarInfo(MANIFEST)
            entry.size, entry.mtime, entry.mode = len(data), int(datetime.now(UTC).timestamp()), 0o600
            tar.addfile(entry, io.BytesIO(data))
            tar.add(dump, arcname=member, recursive=False)
            for rel in media:
                tar.add(root / rel, arcname=f"media/{rel}", recursive=False)
        os.replace(partial, target)
    return manifest


def _backup_sqlite(dump: Path) -> dict[str, Any]:
    """Copy the live database with the online backup API (one consistent snapshot, writers keep going in WAL
    mode), then read counts and the journal head from the copy itself."""
    with closing(sqlite3.connect(dump)) as dst:
        if _sqlite_in_memory():
            connection.ensure_connection()
            connection.connection.backup(dst)
        else:
            with closing(sqlite3.connect(f"file:{_sqlite_path()}?mode=ro", uri=True, timeout=60)) as src:
                src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        tables = _sqlite_tables(dst)
        cur = dst.cursor()
        return {
            "tables": _counts(cur, tables),
            "journal_head": _journal_head(cur, tables),
            "migrations": _migrations(cur, tables),
        }


def _backup_postgres(dump: Path) -> dict[str, Any]:
    """pg_dump in the snapshot of a repeatable-read transaction that also counts the rows: the archive's dump and
    its manifest describe the same instant however busy the server is."""
    import psycopg

    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.rollback()
        raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        raw.read_only = True
        with raw.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            cur.execute(_PG_TABLES)
            tables = [r[0] for r in cur.fetchall()]
            info = {
                "tables": _counts(cur, tables),
                "journal_head": _journal_head(cur, tables),
                "migrations": _migrations(cur, tables),
            }
            cur.execute("SHOW server_version")
            info["server_version"] = cur.fetchone()[0]
            _run_pg_tool(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(dump),
                ]
            )
        raw.rollback()
    finally:
        raw.close()
    return info


# ---------------------------------------------------------------------------------------------------------------
# restore


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:*") as tar:
            member = tar.getmember(MANIFEST)
            fh = tar.extractfile(member)
            if fh is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.loads(fh.read())
    except FileNotFoundError:
        raise BackupError(_("%(path)s does not exist") % {"path": path})
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise BackupError(_("%(path)s is not a platform backup: %(error)s") % {"path": path, "error": exc})
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("tables"), dict):
        raise BackupError(_("%(path)s is not a platform backup") % {"path": path})
    if int(manifest.get("version", 0)) > VERSION:
        raise BackupError(_("%(path)s was written by a newer version of the platform") % {"path": path})
    return manifest


def database_tables() -> list[str]:
    """Tables (and on PostgreSQL other relations) present in the target database."""
    with connection.cursor() as cur:
        if vendor() == "postgresql":
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition"
            )
            return [r[0] for r in cur.fetchall()]
    return [
        t for t in connection.introspection.table_names(include_views=True) if not t.startswith("sqlite_")
    ]


def current_counts() -> dict[str, int]:
    with connection.cursor() as cur:
        if vendor() == "postgresql":
            cur.execute(_PG_TABLES)
            tables = [r[0] for r in cur.fetchall()]
        else:
            tables = [t for t in connection.introspection.table_names() if not t.startswith("sqlite_")]
        return _counts(cur, tables)


def restore_backup(path: Path, *, force: bool = False) -> RestoreReport:
    """Restore the archive into this installation's database and media directory, then compare every table's row
    count and every media file with the manifest. Refuses a database that has tables, or a media directory that
    has files, unless `force` (then both are emptied first)."""
    manifest = read_manifest(path)
    if manifest.get("engine") != vendor():
        raise BackupError(
            _("the backup holds a %(backup)s database but this installation uses %(here)s")
            % {"backup": manifest.get("engine"), "here": vendor()}
        )
    existing = database_tables()
    media_root = _media_root()
    media_present = next(_media_files(media_root), None) is not None
    if (existing or media_present) and not force:
        what = []
        if existing:
            what.append(_("the database has %(n)d tables") % {"n": len(existing)})
        if media_present:
            what.append(_("the media directory %(path)s has files") % {"path": media_root})
        raise BackupError(
            _(
                "Refusing to restore over existing data (%(what)s). Restore into an empty database, or pass --force to replace everything."
            )
            % {"what": "; ".join(what)}
        )
    work_parent = Path(settings.VAR_DIR)
    work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_parent, prefix=".lowcarbon-restore-") as tmp:
        work = Path(tmp)
        with tarfile.open(path, "r:*") as tar:
            member = tar.getmember(str(manifest["database_file"]))
            tar.extract(member, work, filter="data")
            dump = work / member.name
            if vendor() == "sqlite":
                _restore_sqlite(dump)
            else:
                _restore_postgres(dump, drop_existing=bool(existing))
            _restore_media(tar, media_root, replace=force)
    report = RestoreReport(manifest)
    now = current_counts()
    for table in sorted(set(manifest["tables"]) | set(now)):
        want, have = manifest["tables"].get(table), now.get(table)
        if want != have:
            report.count_mismatches.append((table, want, have))
    for rel, meta in manifest.get("media", {}).items():
        target = media_root / rel
        if not target.is_file():
            report.media_problems.append(_("%(file)s is missing") % {"file": rel})
        elif _sha256(target) != meta["sha256"]:
            report.media_problems.append(_("%(file)s differs from the saved file") % {"file": rel})
    return report


def _restore_sqlite(dump: Path) -> None:
    """Copy the saved database into this installation's database with the backup API (replacing everything)."""
    with closing(sqlite3.connect(f"file:{dump}?mode=ro", uri=True)) as src:
        if _sqlite_in_memory():
            connection.ensure_connection()
            src.backup(connection.connection)
            return
        connection.close()
        target = _sqlite_path()
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(target, timeout=60)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")


_PG_DROP = """
SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                 WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relkind = 'S'
"""
_PG_DROP_ROUTINES = """
SELECT format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""
_PG_DROP_TYPES = """
SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
"""


def _restore_postgres(dump: Path, *, drop_existing: bool) -> None:
    """Empty the schema when asked, then pg_restore in one transaction (all or nothing) and ANALYZE."""
    if drop_existing:
        with connection.cursor() as cur:
            for query in (_PG_DROP, _PG_DROP_ROUTINES, _PG_DROP_TYPES):
                cur.execute(query)
                for (statement,) in cur.fetchall():
                    cur.execute(statement)
    connection.close()
    _run_pg_tool(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            str(settings.DATABASES["default"]["NAME"]),
            str(dump),
        ]
    )
    partitions.forget()  # the restored database has its own partitions: look them up again
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def _restore_media(tar: tarfile.TarFile, root: Path, *, replace: bool) -> None:
    if replace and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    for member in tar:
        if not member.name.startswith("media/") or not member.isfile():
            continue
        member.name = member.name[len("media/") :]
        tar.extract(member, root, filter="data")
