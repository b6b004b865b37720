"""Deleting the last entries of the journal leaves a chain that still links up from the first entry; `lowcarbon
ledger verify` holds it against the head recorded by the last successful verification and names the truncation:
the missing range, a failing exit, a failed run on record. Entries appended after the truncation do not hide it."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import translation

from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain import journal as dj
from lowcarbon.registry.models import JournalEntry, VerificationRun
from tests.factories import make_user
from tests.registry.helpers import household_with_units, make_admin

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _busy_ledger() -> tuple:
    admin = make_admin()
    owner, source, _ = household_with_units(40, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))
    for q in (3, 4, 5):
        ledger.do_transfer(from_account=source, to_account=target, quantity=q, actor=owner)
    return owner, source, target


def _verified_head() -> tuple[int, str]:
    out = io.StringIO()
    call_command("ledger", "verify", stdout=out)
    seq, digest = journal.head()
    assert digest in out.getvalue()
    return seq, digest


def _delete_after(seq: int) -> None:
    """What someone with write access to the database does: plain SQL, no platform code."""
    with connection.cursor() as cur:
        cur.execute("DELETE FROM registry_journalentry WHERE seq > %s", [seq])


def _methods() -> list[str]:
    return ["stream", "sql"] if connection.vendor == "postgresql" else ["stream"]


def test_verify_names_the_entries_deleted_from_the_end_after_a_recorded_verification():
    _busy_ledger()
    head, digest = _verified_head()
    assert head >= 6
    _delete_after(head - 3)

    # what remains is a whole chain by itself: only the recorded head shows the loss
    assert journal.verify_journal(anchored=False).ok
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.ok, r.reason, r.first_bad_seq, r.missing_through) == (
            False,
            dj.TRUNCATED,
            head - 2,
            head,
        ), method

    with translation.override("zh-hans"), pytest.raises(CommandError) as e:
        call_command("ledger", "verify")
    text = str(e.value)
    assert f"流水被截断：缺少条目 {head - 2}–{head}" in text, text
    assert f"现在止于条目 {head - 3}" in text and digest in text and "[truncated]" in text

    with translation.override("en"), pytest.raises(CommandError) as e:
        call_command("ledger", "verify", "--chain-only")
    assert f"Journal TRUNCATED: entries {head - 2}–{head} are missing" in str(e.value), str(e.value)

    run = VerificationRun.objects.order_by("-pk").first()
    assert (run.ok, run.reason, run.first_bad_seq) == (False, dj.TRUNCATED, head - 2)


def test_entries_appended_after_a_truncation_do_not_hide_it():
    owner, source, target = _busy_ledger()
    head, digest = _verified_head()
    _delete_after(head - 2)
    for q in (1, 1, 1):  # the platform keeps appending: the chain grows past the recorded head again
        ledger.do_transfer(from_account=source, to_account=target, quantity=q, actor=owner)
    assert journal.head()[0] > head and JournalEntry.objects.get(seq=head).hash != digest

    r = journal.verify_journal()
    assert (r.ok, r.reason, r.first_bad_seq) == (False, dj.ANCHOR_MISMATCH, head)
    with translation.override("zh-hans"), pytest.raises(CommandError) as e:
        call_command("ledger", "verify")
    assert f"流水被改写：条目 {head} 的哈希值已不是" in str(e.value) and digest in str(e.value), str(e.value)


def test_a_journal_that_only_grew_since_the_recorded_verification_verifies():
    owner, source, target = _busy_ledger()
    head, _digest = _verified_head()
    ledger.do_transfer(from_account=source, to_account=target, quantity=2, actor=owner)
    out = io.StringIO()
    call_command("ledger", "verify", stdout=out)
    assert journal.head()[0] == head + 1 and journal.head()[1] in out.getvalue()
    assert VerificationRun.objects.filter(ok=True).count() == 2
