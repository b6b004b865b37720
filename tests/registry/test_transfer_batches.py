"""Transfers settled together (ledger._settle_transfers, what concurrent `do_transfer` calls of one process share):
each transfer comes out as if it had been settled alone, a refusal concerns its own request only, a repeated
client key gives the earlier transfer, and a batch that fails as a whole is settled again request by request."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction
from django.utils import translation

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain import journal as dj
from lowcarbon.registry.models import JournalEntry, SerialBlock, Transfer
from tests.factories import make_user
from tests.registry.helpers import assert_ledger_invariants, household_with_units, make_admin

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _world():
    admin = make_admin()
    sellers = [household_with_units(n, issuer=admin) for n in (37, 5, 20)]
    buyers = [ledger.account_for_user(make_user("buyer")) for _ in range(3)]
    return sellers, buyers


def _settle(reqs):
    """ledger._settle_transfers, each outcome as its caller in do_transfer receives it."""
    return [
        out if isinstance(out, BaseException) else ledger._as_transfer(req, out)
        for req, out in zip(reqs, ledger._settle_transfers(reqs), strict=True)
    ]


def _req(seller, target, quantity, key="", block_ids=None):
    owner, account, _blocks = seller
    return ledger._transfer_request(account, target, quantity, owner, key, block_ids)


def test_a_batch_settles_each_transfer_as_if_alone_and_refuses_only_the_one_that_cannot_be_met():
    (a, b, c), (x, y, z) = _world()
    start = journal.head()[0]

    out = _settle([_req(a, x, 10), _req(b, y, 9), _req(c, z, 20)])

    t1, refused, t3 = out
    assert isinstance(t1, Transfer) and isinstance(t3, Transfer)
    assert isinstance(refused, DomainError) and refused.code == "insufficient_units"
    assert str(refused.message) == f"Account {b[1].number} has 5 units available; 9 asked."
    assert t1.pk < t3.pk and Transfer.objects.count() == 2
    # the partial block of A is split with its lineage, C's block moves whole, B keeps everything
    parent = a[2][0]
    parent.refresh_from_db()
    moved, kept = parent.children.order_by("start")
    assert parent.state == "split"
    assert (moved.start, moved.end, moved.account_id) == (1, 10, x.pk)
    assert (kept.start, kept.end, kept.account_id) == (11, 37, a[1].pk)
    assert list(Transfer.objects.get(pk=t1.pk).blocks.all()) == [moved]
    whole = c[2][0]
    whole.refresh_from_db()
    assert (whole.state, whole.account_id) == ("held", z.pk)
    assert [ledger.balance(acc) for acc in (a[1], b[1], c[1], x, y, z)] == [27, 5, 0, 10, 0, 20]
    # one journal entry per transfer, in the order of the requests, each with its own actor
    entries = list(JournalEntry.objects.filter(seq__gt=start).order_by("seq"))
    assert [(e.kind, e.payload["number"], e.actor_id) for e in entries] == [
        ("transfer", t1.number, a[0].pk),
        ("transfer", t3.number, c[0].pk),
    ]
    assert entries[0].payload["blocks"] == [
        {
            "block": moved.pk,
            "serial": moved.serial,
            "quantity": 10,
            "split_from": parent.serial,
            "kept": kept.serial,
        }
    ]
    assert entries[1].payload["blocks"] == [{"block": whole.pk, "serial": whole.serial, "quantity": 20}]
    # the texts the database hashed are the canonical texts the platform's own code makes
    for e in entries:
        assert e.canonical == dj.entry_content(e.seq, e.at, e.kind, e.actor_id, e.payload)
    assert journal.verify_journal().ok
    assert_ledger_invariants()


def test_named_blocks_not_held_refuse_their_request_only():
    (a, b, _c), (x, y, _z) = _world()
    foreign = b[2][0].pk

    t1, refused = _settle([_req(a, x, 3, block_ids=[foreign]), _req(b, y, 2)])

    assert isinstance(t1, DomainError) and t1.code == "block_unavailable"
    assert isinstance(refused, Transfer) and ledger.balance(y) == 2
    assert ledger.balance(a[1]) == 37


def test_a_repeated_client_key_in_a_batch_gives_the_earlier_transfer_and_a_reused_key_is_refused():
    (a, b, c), (x, y, z) = _world()
    first = ledger.do_transfer(from_account=a[1], to_account=x, quantity=4, actor=a[0], client_key="k-1")

    again, other, fresh = _settle(
        [_req(a, x, 4, key="k-1"), _req(b, y, 1, key="k-2"), _req(c, z, 6, key="k-3")]
    )
    assert isinstance(again, Transfer) and again.pk == first.pk
    assert isinstance(other, Transfer) and isinstance(fresh, Transfer)
    assert ledger.balance(x) == 4 and ledger.balance(y) == 1 and ledger.balance(z) == 6

    (reused,) = _settle([_req(a, x, 5, key="k-1")])
    assert isinstance(reused, DomainError) and reused.code == "idempotency_key_reused"
    assert ledger.balance(x) == 4


def test_a_batch_that_fails_as_a_whole_is_settled_request_by_request(monkeypatch):
    (a, b, c), (x, y, z) = _world()
    real = ledger._insert_transfers
    sizes: list[int] = []

    def fails_for_more_than_one(rows, at, **kw):
        sizes.append(len(rows))
        if len(rows) > 1:
            raise IntegrityError("a twin's key committed meanwhile")
        return real(rows, at, **kw)

    monkeypatch.setattr(ledger, "_insert_transfers", fails_for_more_than_one)
    start = journal.head()[0]

    out = _settle([_req(a, x, 10), _req(b, y, 5), _req(c, z, 2)])

    assert all(isinstance(t, Transfer) for t in out)
    assert sizes == [3, 1, 1, 1]
    assert [ledger.balance(acc) for acc in (x, y, z)] == [10, 5, 2]
    assert JournalEntry.objects.filter(seq__gt=start).count() == 3  # nothing of the failed batch remains
    assert SerialBlock.objects.filter(state="split").count() == 2
    assert_ledger_invariants()


def _many_small_blocks(n: int):
    """An account holding `n` one-unit blocks (received one by one) after the sender's own, larger block."""
    admin = make_admin()
    owner, account, _blocks = household_with_units(n, issuer=admin)
    receiver = make_user("owner_household")
    target = ledger.account_for_user(receiver)
    for _ in range(n):
        ledger.do_transfer(from_account=account, to_account=target, quantity=1, actor=owner)
    return receiver, target


def test_a_transfer_takes_the_oldest_blocks_of_an_account_holding_many_and_names_what_it_has_when_short():
    receiver, held = _many_small_blocks(12)
    buyer = ledger.account_for_user(make_user("buyer"))
    oldest = list(SerialBlock.objects.filter(account=held, state="held").order_by("start")[:3])

    (t,) = _settle([ledger._transfer_request(held, buyer, 3, receiver, "", None)])

    assert isinstance(t, Transfer)
    assert sorted(b.pk for b in Transfer.objects.get(pk=t.pk).blocks.all()) == sorted(b.pk for b in oldest)
    (short,) = _settle([ledger._transfer_request(held, buyer, 10, receiver, "", None)])
    assert isinstance(short, DomainError)
    assert str(short.message) == f"Account {held.number} has 9 units available; 10 asked."
    assert ledger.balance(held) == 9 and ledger.balance(buyer) == 3
    assert_ledger_invariants()


def test_a_retirement_takes_the_oldest_blocks_and_names_what_the_account_has_when_short():
    receiver, held = _many_small_blocks(6)
    first = SerialBlock.objects.filter(account=held, state="held").order_by("start").first()
    with pytest.raises(DomainError) as refused:
        ledger.do_retire(
            account=held,
            quantity=7,
            beneficiary="B",
            purpose="voluntary",
            retired_on=date(2026, 1, 5),
            actor=receiver,
        )
    assert str(refused.value.message) == f"Account {held.number} has 6 units available; 7 asked."
    r = ledger.do_retire(
        account=held,
        quantity=1,
        beneficiary="B",
        purpose="voluntary",
        retired_on=date(2026, 1, 5),
        actor=receiver,
    )
    assert [b.pk for b in r.blocks.all()] == [first.pk]
    assert ledger.balance(held) == 5


def test_a_batch_transfer_is_stored_as_its_caller_sees_it():
    (a, b, _c), (x, y, _z) = _world()
    t1, t2 = _settle([_req(a, x, 10), _req(b, y, 5)])

    for t, (owner, source, _blocks), target in ((t1, a, x), (t2, b, y)):
        stored = Transfer.objects.get(pk=t.pk)
        assert (
            stored.number,
            stored.from_account_id,
            stored.to_account_id,
            stored.quantity,
            stored.actor_id,
        ) == (
            t.number,
            source.pk,
            target.pk,
            t.quantity,
            owner.pk,
        )
        assert t.from_account is source and t.to_account is target and t.actor is owner
        assert stored.created_at == t.created_at
        assert JournalEntry.objects.get(kind="transfer", payload__number=t.number).actor_id == owner.pk


def test_a_database_error_of_the_registry_statements_is_raised_as_djangos():
    (a, _b, _c), (x, _y, _z) = _world()
    block = a[2][0]
    with pytest.raises(IntegrityError), transaction.atomic(), journal.fast_cursor() as cur:
        # a second live block with the same first number: the unique live start refuses it
        cur.execute(
            'INSERT INTO registry_serialblock (series, start, "end", state, account_id, application_id, '
            "system_id, project_code, vintage, methodology_code, factor_code, locked_by, created_at, changed_at) "
            'SELECT series, start, "end", state, %s, application_id, system_id, project_code, vintage, '
            "methodology_code, factor_code, locked_by, created_at, changed_at FROM registry_serialblock WHERE id = %s",
            [x.pk, block.pk],
        )
    assert ledger.balance(x) == 0
