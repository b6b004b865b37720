"""Someone with write access to the database alters the registry journal: `lowcarbon ledger verify`, run as the
operator (or a scheduler) runs it, exits with a failure status and names the entry where the chain breaks, and the
administrators' dashboard records the failed run. Covered here, as a separate process against a committed
database: an altered payload, an altered stored hash, an altered link to the previous entry, a deleted entry, and
an entry rewritten with a freshly computed hash (caught at the entry after it). tests/registry/test_ledger.py
checks the verifier's verdicts in-process. The payload column is generated from the hashed text, so its edit is
refused until the table is altered to make it a plain column; that case is taken last."""

from __future__ import annotations

import json

import pytest
from django.utils import translation

from lowcarbon.registry.domain import journal as dj
from lowcarbon.registry.management.commands.ledger import reason_text
from tests.registry.tamper import make_journal_fields_plain

pytestmark = [pytest.mark.integration]

COLUMNS = ("seq", "at", "kind", "actor_id", "payload", "prev_hash", "hash", "canonical")
#: what an INSERT gives while the table generates the other columns from the hashed text
STORED = ("seq", "prev_hash", "hash", "canonical")


def _read(scratch, seq: int) -> dict:  # type: ignore[no-untyped-def]
    payload = "payload::text" if scratch.vendor == "postgresql" else "payload"
    [row] = scratch.query(
        f"SELECT seq, at, kind, actor_id, {payload}, prev_hash, hash, canonical "  # noqa: S608
        "FROM registry_journalentry WHERE seq = %s",
        (seq,),
    )
    return dict(zip(COLUMNS, row, strict=True))


def _set(scratch, seq: int, **values: str) -> None:  # type: ignore[no-untyped-def]
    cast = "::jsonb" if scratch.vendor == "postgresql" else ""
    sets = ", ".join(f"{k} = %s{cast if k == 'payload' else ''}" for k in values)
    scratch.execute(
        f"UPDATE registry_journalentry SET {sets} WHERE seq = %s",  # noqa: S608
        (*values.values(), seq),
    )


def _restore(scratch, row: dict) -> None:  # type: ignore[no-untyped-def]
    """Put the original row back exactly (re-inserted when it was deleted; the database generates the rest)."""
    scratch.execute("DELETE FROM registry_journalentry WHERE seq = %s", (row["seq"],))
    scratch.execute(
        f"INSERT INTO registry_journalentry ({', '.join(STORED)}) VALUES (%s, %s, %s, %s)",  # noqa: S608
        tuple(row[c] for c in STORED),
    )


def _expect_broken(scratch, seq: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    done = scratch.run("ledger", "verify")
    assert done.returncode != 0, done.stdout
    with translation.override("zh-hans"):
        why = reason_text(reason)
    assert f"流水在条目 {seq} 处断裂" in done.stderr, done.stderr
    assert why in done.stderr and f"[{reason}]" in done.stderr, done.stderr
    ok, first_bad = scratch.query(
        "SELECT ok, first_bad_seq FROM registry_verificationrun ORDER BY id DESC LIMIT 1"
    )[0]
    assert (bool(ok), first_bad) == (False, seq)


def test_ledger_verify_fails_and_names_the_altered_entry(scratch):  # type: ignore[no-untyped-def]
    made = scratch.child("ledger")
    n = made["entries"]
    kinds = dict(scratch.query("SELECT seq, kind FROM registry_journalentry"))
    transfers = sorted(s for s, k in kinds.items() if k == "transfer")
    assert len(transfers) == 6 and max(kinds) > transfers[4] + 1

    # the stored hash replaced
    victim = _read(scratch, transfers[1])
    _set(scratch, victim["seq"], hash="0" * 64)
    _expect_broken(scratch, victim["seq"], dj.HASH_MISMATCH)
    _restore(scratch, victim)

    # the link to the previous entry replaced
    victim = _read(scratch, transfers[2])
    _set(scratch, victim["seq"], prev_hash="f" * 64)
    _expect_broken(scratch, victim["seq"], dj.PREV_LINK_BROKEN)
    _restore(scratch, victim)

    # an entry deleted: the entry after it no longer follows
    victim = _read(scratch, transfers[3])
    scratch.execute("DELETE FROM registry_journalentry WHERE seq = %s", (victim["seq"],))
    _expect_broken(scratch, victim["seq"] + 1, dj.SEQ_GAP)
    _restore(scratch, victim)

    # an entry rewritten by someone who knows the algorithm: text, payload and hash consistent with each other;
    # the next entry still links to the old hash
    victim = _read(scratch, transfers[4])
    text = json.loads(victim["canonical"])
    text["payload"]["quantity"] += 100
    canonical = dj.canonical_json(text)
    _set(scratch, victim["seq"], canonical=canonical, hash=dj.entry_hash(victim["prev_hash"], canonical))
    assert json.loads(_read(scratch, victim["seq"])["payload"]) == text["payload"]  # generated from the text
    _expect_broken(scratch, victim["seq"] + 1, dj.PREV_LINK_BROKEN)
    _restore(scratch, victim)

    # the quantity of a transfer rewritten in the payload column: refused while the column is generated, so the
    # table is altered first; verify then compares every entry's fields and names the entry
    victim = _read(scratch, transfers[0])
    payload = json.loads(victim["payload"])
    altered = json.dumps({**payload, "quantity": payload["quantity"] + 100})
    with pytest.raises(Exception, match="(?i)generated"):
        _set(scratch, victim["seq"], payload=altered)
    assert scratch.run("ledger", "verify").returncode == 0
    make_journal_fields_plain(scratch.vendor, scratch.execute)
    _set(scratch, victim["seq"], payload=altered)
    _expect_broken(scratch, victim["seq"], dj.CONTENT_MISMATCH)
    _set(scratch, victim["seq"], payload=victim["payload"])

    done = scratch.run("ledger", "verify")
    assert done.returncode == 0, done.stderr
    assert f"校验 {n} 个条目" in done.stdout, done.stdout
    assert "不再" in done.stderr, done.stderr  # warns that the fields were compared one by one
