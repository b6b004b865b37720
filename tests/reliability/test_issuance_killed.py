"""A monthly issuance run killed with SIGKILL in the middle of a batch (a power cut, the OOM killer): the batches
committed before stay issued, the batch being written leaves no trace, the journal still verifies, and running the
same command again issues each remaining unit exactly once, under numbers never used before."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

pytestmark = [pytest.mark.integration]

APPLICATIONS = 400
BATCH = 50


def _stop_inside_a_batch(proc, scratch) -> None:  # type: ignore[no-untyped-def]
    """Once a first batch is committed, freeze the process (SIGSTOP) until we catch it inside a write transaction,
    then kill it there with SIGKILL."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (
            "the issuance finished before it could be interrupted:\n" + proc.stdout.read()
        )
        if scratch.scalar("SELECT count(*) FROM registry_serialblock") >= BATCH:
            os.kill(proc.pid, signal.SIGSTOP)
            if scratch.writer_in_transaction():
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.003)
    proc.kill()
    pytest.fail("could not catch the issuance inside a batch")


def _issued_codes(scratch) -> set[str]:  # type: ignore[no-untyped-def]
    return {r[0] for r in scratch.query("SELECT code FROM registry_application WHERE state = 'issued'")}


def _reported(output: str) -> set[str]:
    """Applications the command reported as issued (one line per block: CODE: SERIAL (N t) → ACCOUNT)."""
    return set(re.findall(r"^(AP-R\d+): \S+ \(\d+ t\) → ", output, flags=re.MULTILINE))


def test_issuance_killed_mid_batch_then_rerun_issues_every_unit_exactly_once(scratch):  # type: ignore[no-untyped-def]
    prepared = scratch.child("issuance", str(APPLICATIONS))
    units: dict[str, int] = prepared["units"]
    codes = sorted(units)
    entries_before = scratch.scalar("SELECT count(*) FROM registry_journalentry")

    run = ["issue", "--all-approved", "--issuer", "rel-issuer", "--batch-size", str(BATCH)]
    proc = scratch.popen(*run)
    _stop_inside_a_batch(proc, scratch)
    assert proc.returncode == -signal.SIGKILL
    out = proc.stdout.read()

    # whole batches only, in order: the batch being written when the process died left nothing behind
    first = _issued_codes(scratch)
    assert 0 < len(first) < APPLICATIONS and len(first) % BATCH == 0, len(first)
    assert first == set(codes[: len(first)])
    assert _reported(out) == first  # what the operator saw reported is exactly what was committed
    assert scratch.scalar("SELECT count(*) FROM registry_serialblock") == len(first)
    assert scratch.scalar("SELECT count(*) FROM registry_journalentry WHERE kind = 'issue'") == len(first)
    assert scratch.scalar("SELECT count(*) FROM registry_journalentry") == entries_before + len(first)

    verify = scratch.run("ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    again = scratch.run(*run)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _reported(again.stdout) == set(codes) - first  # nothing issued a second time

    # every application issued once, with exactly its units, into one block of numbers nobody else has
    assert _issued_codes(scratch) == set(codes)
    blocks = scratch.query(
        'SELECT a.code, b.series, b.start, b."end", b.parent_id FROM registry_serialblock b '
        "JOIN registry_application a ON a.id = b.application_id ORDER BY b.series, b.start"
    )
    assert sorted(b[0] for b in blocks) == codes
    assert all(parent is None for *_, parent in blocks)
    assert {code: end - start + 1 for code, _s, start, end, _p in blocks} == units
    assert sum(end - start + 1 for _c, _s, start, end, _p in blocks) == sum(units.values())
    for (_c1, series1, _s1, end1, _p1), (_c2, series2, start2, _e2, _p2) in zip(
        blocks, blocks[1:], strict=False
    ):
        assert series1 != series2 or start2 > end1, "a serial number was used twice"
    journalled = [
        json.loads(text)["payload"]["application"]
        for (text,) in scratch.query("SELECT canonical FROM registry_journalentry WHERE kind = 'issue'")
    ]
    assert sorted(journalled) == codes  # one issue entry per application
    verify = scratch.run("ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
