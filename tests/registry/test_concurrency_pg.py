"""Concurrent registry operations on PostgreSQL, each thread with its own connection: random transfers between
four accounts and retirements of the same units conserve every unit, lose no update, never overdraw, and refuse
only with `insufficient_units`; a client key sent by many threads at once moves units once; a cancellation racing
with transfers of its units cancels every one of them wherever it went."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import date

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import F, Sum

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain.serials import overlapping
from lowcarbon.registry.models import Retirement, SerialBlock, Transfer
from tests.factories import make_system, make_user
from tests.registry.helpers import approved_application, make_admin

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 16
START = 60


def _holders(n: int, units: int):
    admin = make_admin()
    owners = [make_user("owner_household") for _ in range(n)]
    accounts = [ledger.account_for_user(u) for u in owners]
    apps = []
    for u, acc in zip(owners, accounts, strict=True):
        app = approved_application([(make_system(u), units, acc)], applicant=u)
        ledger.do_issue_units(app, issuer=admin)
        apps.append(app)
    return admin, owners, accounts, apps


def _run(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"


def test_concurrent_transfers_and_retirements_conserve_units():
    assert connection.vendor == "postgresql"
    _, owners, accounts, _ = _holders(4, START)
    done: list[tuple] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        rng = random.Random(k)
        try:
            for _ in range(25):
                a = rng.randrange(4)
                q = rng.randint(1, 12)
                try:
                    if rng.random() < 0.75:
                        b = rng.choice([x for x in range(4) if x != a])
                        t = ledger.do_transfer(
                            from_account=accounts[a], to_account=accounts[b], quantity=q, actor=owners[a]
                        )
                        outcome = ("transfer", a, b, q, t.pk)
                    else:
                        r = ledger.do_retire(
                            account=accounts[a],
                            quantity=q,
                            beneficiary=f"thread {k}",
                            purpose="voluntary",
                            retired_on=date(2026, 1, 1),
                            actor=owners[a],
                        )
                        outcome = ("retire", a, None, q, r.pk)
                except DomainError as exc:
                    with lock:
                        refused.append(exc.code)
                    continue
                with lock:
                    done.append(outcome)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    _run([threading.Thread(target=work, args=(k,)) for k in range(THREADS)])

    assert not errors, errors
    assert set(refused) <= {"insufficient_units"}, Counter(refused)
    assert done and refused, "the run should both move units and meet empty accounts"
    # no lost update: every account ends where its own successful operations put it
    expected = [START] * 4
    for kind, a, b, q, _ in done:
        expected[a] -= q
        if kind == "transfer":
            expected[b] += q
    assert [ledger.balance(acc) for acc in accounts] == expected
    assert min(expected) >= 0
    transfers = [x for x in done if x[0] == "transfer"]
    retirements = [x for x in done if x[0] == "retire"]
    assert Transfer.objects.count() == len(transfers)
    assert sorted(Transfer.objects.values_list("pk", flat=True)) == sorted(x[4] for x in transfers)
    retired_units = sum(x[3] for x in retirements)
    assert (Retirement.objects.aggregate(q=Sum("quantity"))["q"] or 0) == retired_units
    assert (
        SerialBlock.objects.filter(state="retired").aggregate(q=Sum(F("end") - F("start") + 1))["q"] or 0
    ) == retired_units
    totals = ledger.supply_totals()
    assert totals == {"issued": 4 * START, "held": sum(expected), "retired": retired_units, "cancelled": 0}
    live = SerialBlock.objects.exclude(state="split").values_list("series", "start", "end")
    assert overlapping(live) == []
    for method in ("sql", "stream"):
        result = journal.verify_journal(method=method)
        assert result.ok and result.count == 4 + 4 + len(done), (method, result)


def test_one_client_key_sent_by_many_threads_moves_units_once():
    _, owners, accounts, _ = _holders(2, 50)
    results: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            t = ledger.do_transfer(
                from_account=accounts[0],
                to_account=accounts[1],
                quantity=7,
                actor=owners[0],
                client_key="same-key",
            )
            results.append(t.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    _run([threading.Thread(target=work) for _ in range(8)])
    assert not errors, errors
    assert len(results) == 8 and len(set(results)) == 1
    assert Transfer.objects.count() == 1
    assert [ledger.balance(a) for a in accounts] == [43, 57]


def test_one_client_key_sent_by_many_processes_at_once_moves_units_once():
    """As separate processes do (each its own batches): the twins race for the key in the database; the losers'
    transactions fail on the unique key and answer with the winner's transfer."""
    _, owners, accounts, _ = _holders(2, 50)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        try:
            req = ledger._transfer_request(accounts[0], accounts[1], 7, owners[0], "same-key", None)
            barrier.wait(30)
            results.extend(ledger._as_transfer(req, out) for out in ledger._settle_transfers([req]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)
        finally:
            connection.close()

    _run([threading.Thread(target=work) for _ in range(8)])
    assert all(isinstance(r, Transfer) for r in results), results
    assert len(results) == 8 and len({r.pk for r in results}) == 1
    assert Transfer.objects.count() == 1
    assert [ledger.balance(a) for a in accounts] == [43, 57]


def test_concurrent_transfers_of_one_process_share_transactions_and_each_gets_its_own():
    _, owners, accounts, _ = _holders(2 * THREADS, 40)
    batches, combined = ledger._TRANSFERS.batches, ledger._TRANSFERS.combined
    got: dict[int, list[int]] = {k: [] for k in range(THREADS)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(k: int) -> None:
        src, dst = 2 * k, 2 * k + 1
        try:
            barrier.wait(30)
            for q in range(1, 9):  # 36 units in 8 transfers
                t = ledger.do_transfer(
                    from_account=accounts[src], to_account=accounts[dst], quantity=q, actor=owners[src]
                )
                assert (t.from_account.pk, t.to_account.pk, t.quantity) == (
                    accounts[src].pk,
                    accounts[dst].pk,
                    q,
                )
                got[k].append(t.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    _run([threading.Thread(target=work, args=(k,)) for k in range(THREADS)])
    assert not errors, errors
    runs = ledger._TRANSFERS.batches - batches
    assert ledger._TRANSFERS.combined - combined == THREADS * 8
    assert runs < THREADS * 8, "concurrent transfers should have shared transactions"
    for k in range(THREADS):
        rows = Transfer.objects.filter(pk__in=got[k]).order_by("pk")
        assert [(r.from_account_id, r.quantity) for r in rows] == [
            (accounts[2 * k].pk, q) for q in range(1, 9)
        ]
        assert ledger.balance(accounts[2 * k]) == 4 and ledger.balance(accounts[2 * k + 1]) == 76
    result = journal.verify_journal(method="stream")
    assert result.ok and result.count == 2 * 2 * THREADS + THREADS * 8


def test_cancellation_racing_with_transfers_cancels_every_unit_of_the_application():
    admin, owners, accounts, apps = _holders(4, 40)
    target_app = apps[0]
    refused: list[str] = []
    errors: list[BaseException] = []
    cancelled: list[int] = []

    def mover(k: int) -> None:
        rng = random.Random(100 + k)
        try:
            for _ in range(20):
                a = rng.randrange(4)
                b = rng.choice([x for x in range(4) if x != a])
                try:
                    ledger.do_transfer(
                        from_account=accounts[a],
                        to_account=accounts[b],
                        quantity=rng.randint(1, 6),
                        actor=owners[a],
                    )
                except DomainError as exc:
                    refused.append(exc.code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def canceller() -> None:
        try:
            c = ledger.do_cancel(application=target_app, reason="racing test", actor=admin)
            cancelled.append(c.quantity)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=mover, args=(k,)) for k in range(8)]
    threads.insert(4, threading.Thread(target=canceller))
    _run(threads)

    assert not errors, errors
    assert set(refused) <= {"insufficient_units"}
    assert cancelled == [40]
    assert not SerialBlock.objects.filter(application=target_app, state="held").exists()
    totals = ledger.supply_totals()
    assert totals["cancelled"] == 40 and totals["issued"] == 160
    assert totals["issued"] == totals["held"] + totals["retired"] + totals["cancelled"]
    assert sum(ledger.balance(a) for a in accounts) == 120
    assert journal.verify_journal().ok


def test_a_transfer_locks_only_the_blocks_it_takes():
    """While a transfer of the oldest block of an account is open, the account's other blocks stay free: another
    connection can lock them at once (an account with many small blocks does not pay one row lock per block)."""
    _, owners, accounts, _ = _holders(3, 10)
    # the first account now holds three blocks: its own and two received
    for k in (1, 2):
        ledger.do_transfer(from_account=accounts[k], to_account=accounts[0], quantity=4, actor=owners[k])
    held = list(
        SerialBlock.objects.filter(account=accounts[0], state="held").order_by("vintage", "series", "start")
    )
    assert len(held) == 3
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        autocommit=False,
    )
    try:
        with transaction.atomic():
            t = ledger.do_transfer(
                from_account=accounts[0], to_account=accounts[1], quantity=1, actor=owners[0]
            )
            taken = set(t.blocks.values_list("pk", flat=True)) | {held[0].pk}
            free = [b.pk for b in held if b.pk not in taken]
            assert free
            for pk in free:  # not locked by the open transfer: NOWAIT succeeds
                other.execute(
                    "SELECT id FROM registry_serialblock WHERE id = %s FOR NO KEY UPDATE NOWAIT", [pk]
                )
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(
                    "SELECT id FROM registry_serialblock WHERE id = %s FOR NO KEY UPDATE NOWAIT", [held[0].pk]
                )
            other.rollback()
    finally:
        other.close()
