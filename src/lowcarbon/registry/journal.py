"""The registry journal: every registry change appended to one hash chain (domain.md §3.3, §9.1), verified against
the database, exported as JSON Lines that anyone can re-check without the platform.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock taken before the last entry is read
(held until the caller's transaction ends), on SQLite by its IMMEDIATE write transactions. Each row stores the
canonical text that was hashed; its time, kind, actor and payload are columns the database generates from that text
(models.JournalField), so they cannot be edited on their own. Verification recomputes every hash from the text,
checks the links and the sequence, and checks that the fields still say what the text says: by checking that the
table still generates them (one look at the schema), or, where the table was altered so that it no longer does,
entry by entry, so that an edit of the payload column alone is found too.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.dispatch import Signal
from django.utils import timezone

from lowcarbon.registry.domain.journal import (
    CONTENT_MISMATCH,
    FIELDS_COMPARED,
    FIELDS_COMPARED_UNREAD,
    FIELDS_GENERATED,
    GENESIS,
    HASH_MISMATCH,
    HOW_TO_VERIFY,
    PREV_LINK_BROKEN,
    SEQ_GAP,
    VerifyResult,
    canonical_text,
    check_anchor,
    entry_content,
    entry_hash,
    iso_utc,
    normalise,
    verify_prepared,
)
from lowcarbon.registry.models import JournalEntry, VerificationRun

#: key of the PostgreSQL advisory lock that serialises appends ("XLJOURNL" read as a number)
JOURNAL_LOCK_KEY = 0x584C4A4F55524E4C

#: sent after entries are appended (inside the caller's transaction), with `entries`: the audit log listens
appended = Signal()

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
_TABLE = JournalEntry._meta.db_table


#: psycopg's threshold for preparing a statement by itself, set on connections the registry uses: in effect never,
#: so that only the hot statements run through `execute_prepared` are prepared (Django leaves preparing off altogether)
_EXPLICIT_ONLY = 2**31 - 1


@contextmanager
def fast_cursor() -> Iterator[Any]:
    """A cursor on Django's connection, in its current transaction, for the registry's frequent short statements.
    On PostgreSQL a psycopg cursor that binds parameters on the server: Django's default cursor merges them into
    the text on the client, which for these statements costs about as much as running them; its errors are raised
    as Django's (IntegrityError, OperationalError…), like those of Django's cursors. Elsewhere Django's."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _EXPLICIT_ONLY
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cur:
            yield cur
    else:
        with connection.cursor() as cur:
            yield cur


@contextmanager
def pipeline() -> Iterator[None]:
    """On PostgreSQL, send the registry's statements in the block without waiting for each one's answer (psycopg's
    pipeline mode): the server runs them one after the other, in order, as always, and the client waits only where
    it reads a result, for everything sent before it. A chain of statements whose results are not needed until the
    end costs one round trip instead of one each. An error of any statement is raised where the next result is
    read (or at the end of the block) and aborts the transaction. Elsewhere it changes nothing."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def execute_prepared(cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run one of the registry's hot statements (fixed text) on a `fast_cursor`: on PostgreSQL prepared once per
    connection, so that the server parses and plans it once instead of at every call."""
    if connection.vendor == "postgresql":
        return cur.execute(sql, params, prepare=True)
    return cur.execute(sql, params)


def append(kind: str, payload: dict[str, Any], actor: Any = None) -> JournalEntry:
    """Append one entry to the chain inside the caller's transaction (which must be open: the entry commits or
    rolls back with the change it records). `actor` is a user, a user id or None for the system."""
    if connection.vendor != "postgresql":
        return append_many([(kind, payload, actor)])[0]
    _require_transaction()
    data, payload_text = _prepare(kind, payload)
    actor_id = _actor_id(actor)
    # one round trip: lock, read the head with a fresh snapshot, hash, insert (migration 0002)
    with fast_cursor() as cur:
        execute_prepared(
            cur,
            "SELECT o_seq, o_at, o_prev, o_hash, o_content FROM registry_journal_append(%s, %s, %s, %s, %s)",
            [JOURNAL_LOCK_KEY, kind, f'"{kind}"', actor_id, payload_text],
        )
        seq, at, prev_hash, digest, content = cur.fetchone()
    entry = _entry(seq, at, kind, actor_id, data, prev_hash, digest, content)
    appended.send(sender=JournalEntry, entries=[entry])
    return entry


def append_many(entries: Sequence[tuple[str, dict[str, Any], Any]]) -> list[JournalEntry]:
    """Append several entries in order (transfers settled together, an issuance run): one lock, one read of the
    head, one insert (on PostgreSQL, a few entries in one call of `registry_journal_append_many`). Same chain, same
    texts as one `append` after the other."""
    postgres = connection.vendor == "postgresql"
    if postgres and len(entries) == 1:
        kind, payload, actor = entries[0]
        return [append(kind, payload, actor)]
    _require_transaction()
    prepared = [(kind, *_prepare(kind, payload), _actor_id(actor)) for kind, payload, actor in entries]
    if not prepared:
        return []
    out: list[JournalEntry] = []
    rows: list[list[Any]] = []
    with fast_cursor() as cur:
        if postgres and len(prepared) <= _ARRAY_INSERT_MAX:
            # a few entries (transfers settled together): lock, head, texts, hashes and insert in one round trip
            # (migration 0006); the texts are the same bytes entry_content makes
            execute_prepared(
                cur,
                # the texts go in binary: psycopg's text form of an array escapes every quote of the JSON
                "SELECT o_seq, o_at, o_prev, o_hash, o_content FROM registry_journal_append_many(%s, %b::text[], "
                "%b::text[], %s::bigint[], %b::text[])",
                [
                    JOURNAL_LOCK_KEY,
                    [p[0] for p in prepared],
                    [f'"{p[0]}"' for p in prepared],
                    [p[3] for p in prepared],
                    [p[2] for p in prepared],
                ],
            )
            for (kind, data, _text, actor_id), (seq, at, prev_hash, digest, content) in zip(
                prepared, cur.fetchall(), strict=True
            ):
                out.append(_entry(seq, at, kind, actor_id, data, prev_hash, digest, content))
            appended.send(sender=JournalEntry, entries=out)
            return out
        if postgres:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [JOURNAL_LOCK_KEY])
            cur.execute(
                f"SELECT j.seq, j.hash, clock_timestamp() FROM (SELECT 1) AS one LEFT JOIN LATERAL "  # noqa: S608
                f"(SELECT seq, hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1) AS j ON true"
            )
            last_seq, last_hash, at = cur.fetchone()
        else:  # SQLite: the IMMEDIATE write transaction already holds the database's write lock
            cur.execute(f"SELECT seq, hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1")  # noqa: S608
            head_row = cur.fetchone()
            last_seq, last_hash = head_row if head_row else (None, None)
            at = timezone.now()
        seq, prev_hash = (int(last_seq), str(last_hash)) if last_seq is not None else (0, GENESIS)
        at_text = iso_utc(at)
        for kind, data, payload_text, actor_id in prepared:
            seq += 1
            content = entry_content(seq, at_text, kind, actor_id, payload_text)
            digest = entry_hash(prev_hash, content)
            rows.append([seq, prev_hash, digest, content])
            out.append(_entry(seq, at, kind, actor_id, data, prev_hash, digest, content))
            prev_hash = digest
        columns = "(seq, prev_hash, hash, canonical)"  # the other columns are generated from the hashed text
        if postgres:  # COPY: one stream for a whole run
            with cur.copy(f"COPY {_TABLE} {columns} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = "(%s, %s, %s, %s)"
            for i in range(0, len(rows), 500):
                chunk = rows[i : i + 500]
                cur.execute(
                    f"INSERT INTO {_TABLE} {columns} VALUES " + ", ".join([marks] * len(chunk)),  # noqa: S608
                    [v for row in chunk for v in row],
                )
    appended.send(sender=JournalEntry, entries=out)
    return out


#: up to this many entries, append_many appends them with one call of the database's function on PostgreSQL;
#: more (an issuance run) are hashed here and go by COPY
_ARRAY_INSERT_MAX = 200


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise TransactionManagementError("journal.append must run inside the caller's transaction.atomic()")


def _prepare(kind: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The normalised payload and its canonical text (SQLite stores that text itself, so verification compares
    strings)."""
    if not _KIND.match(kind):
        raise ValueError(f"journal kind {kind!r} must be snake_case, at most 30 characters")
    data = normalise(payload)
    if not isinstance(data, dict):
        raise TypeError("a journal payload is a mapping")
    return data, canonical_text(data)


def _entry(
    seq: int,
    at: Any,
    kind: str,
    actor_id: int | None,
    data: dict[str, Any],
    prev: str,
    digest: str,
    content: str,
) -> JournalEntry:
    """The entry just inserted, as a saved model instance (built as the ORM builds a fetched row, no read back)."""
    values = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "actor_id": actor_id,
        "payload": data,
        "prev_hash": prev,
        "hash": digest,
        "canonical": content,
    }
    return JournalEntry.from_db(connection.alias, None, [values[a] for a in _ENTRY_ATTNAMES])


_ENTRY_ATTNAMES = [f.attname for f in JournalEntry._meta.concrete_fields]


def _actor_id(actor: Any) -> int | None:
    if actor is None:
        return None
    if isinstance(actor, int):
        return actor
    pk = getattr(actor, "pk", None)
    return int(pk) if pk is not None else None


def head() -> tuple[int, str]:
    """(seq, hash) of the last entry, (0, GENESIS) for an empty journal."""
    last = JournalEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS)


# ---------------------------------------------------------------------------------------------------------------
# verification


def last_verified_run() -> VerificationRun | None:
    """The recorded verification that found the chain whole up to the furthest head: the anchor that a later
    verification holds the chain against. A successful run read entries 1 … `entries` without a gap, so its head
    is entry `entries`, with hash `head_hash`."""
    return VerificationRun.objects.filter(ok=True).exclude(head_hash="").order_by("-entries", "-pk").first()


def verify_journal(
    *, method: str = "auto", chain_only: bool = False, chunk_size: int = 20000, anchored: bool = True
) -> VerifyResult:
    """Verify the stored chain: sequence, links and the hash of every entry, and (unless `chain_only`) that each
    entry's fields still match its hashed text. Names the first broken entry. With `anchored` the chain must also
    still reach, with the same hash, the head of the last successful recorded verification (`last_verified_run`):
    entries deleted from the end are reported as `truncated`, with the missing range.

    method "stream" reads the entries in order and recomputes every hash in Python (domain.journal.verify_prepared);
    "sql" has PostgreSQL recompute the same SHA-256 in one parallel scan, so a million entries are not shipped to the
    client, and looks for the broken entry only when something is wrong; "auto" is "sql" on PostgreSQL."""
    if method not in ("auto", "sql", "stream"):
        raise ValueError(f"unknown verification method {method!r}")
    result = _verify(method, chain_only, chunk_size)
    anchor = last_verified_run() if anchored and result.ok else None
    if anchor is None:
        return result
    at_anchor = JournalEntry.objects.filter(seq=anchor.entries).values_list("hash", flat=True).first()
    return check_anchor(result, anchor.entries, anchor.head_hash, at_anchor)


def _verify(method: str, chain_only: bool, chunk_size: int) -> VerifyResult:
    last_seq, last_hash = head()
    generated = None if chain_only else fields_generated()
    # the fields are compared entry by entry where the table no longer generates them from the hashed text, or
    # where its definition could not be read
    compare = not chain_only and generated is not True
    result = _verify_chain(method, last_seq, last_hash, not compare, chunk_size)
    if chain_only:
        fields = ""
    else:
        fields = {True: FIELDS_GENERATED, False: FIELDS_COMPARED, None: FIELDS_COMPARED_UNREAD}[generated]
    return dataclasses.replace(result, fields=fields)


def _verify_chain(
    method: str, last_seq: int, last_hash: str, chain_only: bool, chunk_size: int
) -> VerifyResult:
    if connection.vendor == "postgresql" and method in ("auto", "sql"):
        try:
            with transaction.atomic():
                return _verify_sql(last_seq, last_hash, chain_only)
        except DatabaseError:
            # e.g. a hashed text that is no JSON any more: the streaming check names the entry
            if method == "sql":
                raise
    elif method == "sql":
        raise ValueError("the sql verification method needs PostgreSQL")
    return _verify_stream(last_seq, chain_only, chunk_size)


#: the journal's columns that the database generates from the hashed text
GENERATED_FIELDS = ("at", "kind", "actor_id", "payload")


def fields_generated() -> bool | None:
    """Whether the journal table still generates time, kind, actor and payload from the hashed text, each with the
    model's expression, as stored generated columns of a table (not a view). Then no entry's fields can differ
    from its text, and verification need not compare them one by one. Anything else (an expression dropped or
    changed, a view in the table's place) answers False; None when the database could not be asked (on
    PostgreSQL the check makes a temporary table, which a read-only database or role refuses)."""
    editor = connection.SchemaEditorClass(connection, collect_sql=True)
    expected: dict[str, str] = {}
    for name in GENERATED_FIELDS:
        field = JournalEntry._meta.get_field(name)
        sql, params = editor.column_sql(JournalEntry, field, include_default=False)
        if sql is None or params:
            return False
        expected[field.column] = sql
    try:
        if connection.vendor == "sqlite":
            return _sqlite_generates(editor, expected)
        if connection.vendor == "postgresql":
            with transaction.atomic():
                return _postgres_generates(editor, expected)
    except DatabaseError:
        return None
    return False


def _sqlite_generates(editor: Any, expected: dict[str, str]) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT type, sql FROM sqlite_master WHERE name = %s", [_TABLE])
        row = cur.fetchone()
    if row is None or row[0] != "table":
        return False
    return all(f"{editor.quote_name(column)} {sql}" in row[1] for column, sql in expected.items())


_PG_GENERATED = """
SELECT c.relname, c.relkind, a.attname, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid IN (%s::regclass, 'pg_temp.lowcarbon_journal_shape'::regclass)
  AND a.attname = ANY(%s) AND NOT a.attisdropped"""


def _postgres_generates(editor: Any, expected: dict[str, str]) -> bool:
    """Compares the table's generation expressions, as PostgreSQL prints them, with those of a temporary table
    made from the model's definitions (so that the comparison does not depend on how a version prints them)."""
    columns = ", ".join(f"{editor.quote_name(column)} {sql}" for column, sql in expected.items())
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE lowcarbon_journal_shape (seq bigint, canonical text, {columns})")
        try:
            cur.execute(_PG_GENERATED, [_TABLE, list(expected)])
            rows = cur.fetchall()
        finally:
            cur.execute("DROP TABLE pg_temp.lowcarbon_journal_shape")
    live = {name: (kind, gen, expr) for rel, kind, name, gen, expr in rows if rel == _TABLE}
    shape = {name: expr for rel, _kind, name, _gen, expr in rows if rel != _TABLE}
    return set(live) == set(shape) == set(expected) and all(
        kind in ("r", "p") and gen == "s" and expr is not None and expr == shape[name]
        for name, (kind, gen, expr) in live.items()
    )


# -- PostgreSQL ------------------------------------------------------------------------------------------------
# One parallel scan recomputes every SHA-256 (and compares the fields), one join checks sequence and links. The
# fields are checked against the hashed text by rebuilding its prefix (actor, time, kind) from the columns and
# comparing the payload by value: one jsonb parse per entry, the dearest part of the check. (The seq column needs
# no check of its own: an altered seq breaks the sequence or the links.)
_PG_PREFIX = (
    """'{"actor_id":' || coalesce(actor_id::text, 'null') || ',"at":"' """
    """|| to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '","kind":' || to_json(kind)::text """
    """|| ',"payload":' """
)
_PG_FIELDS_OK = f"""(left(canonical, strpos(canonical, ',"payload":') + 10) = {_PG_PREFIX}
     AND substr(canonical, strpos(canonical, ',"payload":') + 11,
                length(canonical) - strpos(canonical, ',"payload":') - length(seq::text) - 18)::jsonb = payload)"""

_PG_PASS = f"""
SELECT count(*),
       min(seq) FILTER (WHERE hash IS DISTINCT FROM
                        encode(sha256(convert_to(prev_hash || E'\\n' || canonical, 'UTF8')), 'hex')){{fields}}
FROM {_TABLE} WHERE seq <= %(last)s"""  # noqa: S608

_PG_FIELDS = f""",
       min(seq) FILTER (WHERE NOT {_PG_FIELDS_OK})"""

_PG_FIELDS_AFTER = f"""
SELECT seq FROM {_TABLE} WHERE seq > %(after)s AND seq <= %(last)s AND NOT {_PG_FIELDS_OK}
ORDER BY seq LIMIT 1"""  # noqa: S608

_PG_LINKS = f"""
SELECT min(b.seq) FILTER (WHERE a.seq IS NULL AND b.seq <> 1),
       min(b.seq) FILTER (WHERE b.prev_hash IS DISTINCT FROM CASE WHEN b.seq = 1 THEN %(genesis)s ELSE a.hash END)
FROM {_TABLE} b LEFT JOIN {_TABLE} a ON a.seq = b.seq - 1
WHERE b.seq <= %(last)s"""  # noqa: S608


def _verify_sql(last_seq: int, last_hash: str, chain_only: bool) -> VerifyResult:
    args = {"genesis": GENESIS, "last": last_seq}
    with connection.cursor() as cur:
        cur.execute(_PG_PASS.format(fields="" if chain_only else _PG_FIELDS), args)
        row = cur.fetchone()
        count, bad_hash = row[0], row[1]
        bad_fields = None if chain_only else row[2]
        while bad_fields is not None and _same_by_value(
            bad_fields
        ):  # same value, other spelling: not altered
            cur.execute(_PG_FIELDS_AFTER, {**args, "after": bad_fields})
            nxt = cur.fetchone()
            bad_fields = nxt[0] if nxt else None
        cur.execute(_PG_LINKS, args)
        bad_gap, bad_link = cur.fetchone()
        # the first broken entry; at one entry the reasons rank as the streaming check reports them
        found = [
            (seq, rank, reason)
            for rank, (seq, reason) in enumerate(
                [
                    (bad_gap, SEQ_GAP),
                    (bad_link, PREV_LINK_BROKEN),
                    (bad_hash, HASH_MISMATCH),
                    (bad_fields, CONTENT_MISMATCH),
                ]
            )
            if seq is not None
        ]
        if not found:
            return VerifyResult(True, int(count), None, "", last_hash)
        seq, _, reason = min(found)
        cur.execute(f"SELECT count(*) FROM {_TABLE} WHERE seq <= %s", [seq])  # noqa: S608
        read = int(cur.fetchone()[0])
        cur.execute(f"SELECT hash FROM {_TABLE} WHERE seq < %s ORDER BY seq DESC LIMIT 1", [seq])  # noqa: S608
        before = cur.fetchone()
    return VerifyResult(False, read, int(seq), reason, before[0] if before else GENESIS)


# -- streaming -----------------------------------------------------------------------------------------------------
# Per entry: the exact bytes that were hashed (prev_hash, newline, canonical text), the stored hash and whether the
# fields give the hashed text; Python checks sequence and links and recomputes every SHA-256.
_STREAM_SQLITE = f"""
SELECT seq, CAST(prev_hash || char(10) || canonical AS BLOB), hash, {{fields}}
FROM {_TABLE} WHERE seq <= %s ORDER BY seq"""  # noqa: S608

# On SQLite the payload column holds the canonical payload text (see append), so the fields rebuild the hashed
# text by concatenation; an entry that differs is compared by value before it is reported.
_SQLITE_FIELDS = """canonical = '{"actor_id":' || ifnull(actor_id, 'null') || ',"at":"' || replace(at, ' ', 'T')
           || CASE WHEN length(at) = 19 THEN '.000000' ELSE '' END || 'Z","kind":"' || kind || '","payload":'
           || payload || ',"seq":' || seq || '}'"""

# On PostgreSQL the streaming check is the independent one: the fields are compared by value in Python.
_STREAM_POSTGRES = f"""
SELECT seq, convert_to(prev_hash || E'\\n' || canonical, 'UTF8'), hash{{fields}}
FROM {_TABLE} WHERE seq <= %s ORDER BY seq"""  # noqa: S608


#: from this many entries on, a file-based SQLite journal is verified by one process per core, each reading its own
#: range of entries straight from the file (read-only)
PARALLEL_FROM = 200_000


def _verify_stream(last_seq: int, chain_only: bool, chunk_size: int) -> VerifyResult:
    if connection.vendor == "sqlite":
        path = str(connection.settings_dict["NAME"])
        workers = min(os.cpu_count() or 1, 8)
        if (
            last_seq >= PARALLEL_FROM
            and workers > 1
            and not connection.in_atomic_block  # other processes see committed entries only
            and not connection.is_in_memory_db()
            and "fork" in multiprocessing.get_all_start_methods()
        ):
            return verify_sqlite_file(path, last_seq, chain_only=chain_only, workers=workers)
    with transaction.atomic():
        if connection.vendor == "sqlite":
            sql = _STREAM_SQLITE.format(fields="1" if chain_only else _SQLITE_FIELDS)
            with connection.cursor() as cur:
                cur.execute(sql, [last_seq])
                return verify_prepared(_batches(cur, chunk_size), recheck=_same_by_value)
        fields = "" if chain_only else ", canonical, at, kind, actor_id, payload::text"
        with connection.connection.cursor(name="lowcarbon_journal_verify") as cur:
            cur.itersize = chunk_size
            cur.execute(_STREAM_POSTGRES.format(fields=fields), [last_seq])
            if chain_only:
                return verify_prepared((seq, msg, h, True) for seq, msg, h in cur)
            return verify_prepared(
                (seq, msg, h, _fields_match(seq, content, at, kind, actor_id, payload))
                for seq, msg, h, content, at, kind, actor_id, payload in cur
            )


def verify_sqlite_file(
    path: str, last_seq: int, *, chain_only: bool = False, workers: int = 2
) -> VerifyResult:
    """Verify entries 1..last_seq of an SQLite journal file with `workers` processes, each checking a contiguous
    range (its first entry linked to the stored hash of the entry before it); the first failing range names the
    first broken entry, so the verdict is the sequential one."""
    bounds = [last_seq * i // workers for i in range(workers + 1)]
    ranges = [(bounds[i], bounds[i + 1]) for i in range(workers) if bounds[i + 1] > bounds[i]]
    with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
        results = pool.starmap(_verify_sqlite_range, [(path, a, b, chain_only) for a, b in ranges])
    count = 0
    head_hash = GENESIS
    for result in results:
        if not result.ok:
            return VerifyResult(
                False, count + result.count, result.first_bad_seq, result.reason, result.head_hash
            )
        count += result.count
        head_hash = result.head_hash
    return VerifyResult(True, count, None, "", head_hash)


def _verify_sqlite_range(path: str, after: int, upto: int, chain_only: bool) -> VerifyResult:
    """Entries after..upto of an SQLite journal file, in a process of its own (plain sqlite3, read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        start_hash = GENESIS
        if after:
            row = db.execute(f"SELECT hash FROM {_TABLE} WHERE seq = ?", [after]).fetchone()  # noqa: S608
            if (
                row is None
            ):  # the entry before this range is missing: the range's first entry breaks the sequence
                first = db.execute(
                    f"SELECT min(seq) FROM {_TABLE} WHERE seq > ? AND seq <= ?",  # noqa: S608
                    [after, upto],
                ).fetchone()[0]
                return VerifyResult(False, 1, first if first is not None else after, SEQ_GAP, GENESIS)
            start_hash = row[0]
        sql = _STREAM_SQLITE.format(fields="1" if chain_only else _SQLITE_FIELDS).replace("%s", "?")
        sql = sql.replace("WHERE seq <= ?", "WHERE seq > ? AND seq <= ?")
        cursor = db.execute(sql, [after, upto])

        def recheck(seq: int) -> bool:
            row = db.execute(
                f"SELECT canonical, at, kind, actor_id, payload FROM {_TABLE} WHERE seq = ?",  # noqa: S608
                [seq],
            ).fetchone()
            at = datetime.fromisoformat(row[1]).replace(tzinfo=UTC)
            return _fields_match(seq, row[0], at, row[2], row[3], row[4])

        return verify_prepared(
            _batches(cursor, 20000), start_seq=after + 1, start_hash=start_hash, recheck=recheck
        )
    finally:
        db.close()


def _batches(cur: Any, size: int) -> Iterator[tuple[Any, ...]]:
    while batch := cur.fetchmany(size):
        yield from batch


def _fields_match(seq: int, content: str, at: Any, kind: str, actor_id: int | None, payload: Any) -> bool:
    """Whether stored fields give the hashed text, compared by value (the payload's spelling may differ)."""
    try:
        text = json.loads(content)
        value = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
    except ValueError:
        return False
    return (
        isinstance(text, dict)
        and text.get("seq") == seq
        and text.get("kind") == kind
        and text.get("actor_id") == actor_id
        and isinstance(at, datetime)
        and text.get("at") == iso_utc(at if at.tzinfo else at.replace(tzinfo=UTC))
        and text.get("payload") == normalise(value)
    )


def _same_by_value(seq: int) -> bool:
    """Whether an entry's fields match its hashed text by value (a payload the ORM re-serialised in its own
    spelling is not an alteration)."""
    row = (
        JournalEntry.objects.filter(seq=seq).values("at", "kind", "actor_id", "payload", "canonical").first()
    )
    if row is None:
        return False
    return _fields_match(seq, row["canonical"], row["at"], row["kind"], row["actor_id"], row["payload"])


# ---------------------------------------------------------------------------------------------------------------
# export


def export_journal(fh: IO[str], *, chunk_size: int = 20000) -> int:
    """Write the journal as JSON Lines: a header line saying how to recompute the hashes, then one line per
    entry with its fields, prev_hash and hash. Returns the number of entries written."""
    last_seq, head_hash = head()
    header = {
        "format": "lowcarbon-registry-journal",
        "version": 1,
        "entries": last_seq,
        "head_hash": head_hash,
        "genesis": GENESIS,
        "hash": "sha256",
        "how_to_verify": HOW_TO_VERIFY,
        "exported_at": iso_utc(timezone.now()),
    }
    fh.write(json.dumps(header, ensure_ascii=False, sort_keys=True) + "\n")
    n = 0
    with transaction.atomic():
        rows = (
            JournalEntry.objects.filter(seq__lte=last_seq)
            .order_by("seq")
            .values_list("canonical", "prev_hash", "hash")
            .iterator(chunk_size=chunk_size)
        )
        for content, prev_hash, stored in rows:
            # the hashed text is an object ending in "}": add the two hashes to it
            fh.write(f'{content[:-1]},"prev_hash":"{prev_hash}","hash":"{stored}"}}\n')
            n += 1
    return n


def read_export(fh: IO[str]) -> tuple[dict[str, Any], Iterator[tuple[Any, ...]]]:
    """The header of an exported journal and its entries as (seq, at, kind, actor_id, payload, prev_hash, hash),
    ready for `domain.journal.verify_chain`."""
    header = json.loads(fh.readline())

    def entries() -> Iterator[tuple[Any, ...]]:
        for line in fh:
            if not line.strip():
                continue
            e = json.loads(line)
            yield e["seq"], e["at"], e["kind"], e["actor_id"], e["payload"], e["prev_hash"], e["hash"]

    return header, entries()
