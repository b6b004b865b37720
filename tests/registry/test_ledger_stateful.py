"""Random sequences of issuance, transfers, retirements, cancellations and re-issues against the real services
(SQLite), checked after every step against a simple model and the ledger's invariants (domain.md §3.7): live blocks
of a series never overlap, numbers are never reused, issued = held + retired + cancelled, no balance below zero,
every refusal is the one the model predicts."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction
from django.db.models import F, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain.serials import overlapping
from lowcarbon.registry.models import Application, SerialBlock
from tests.factories import make_system, make_user
from tests.registry.helpers import approved_application, make_admin

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HOLDERS = 3


class LedgerMachine(RuleBasedStateMachine):
    """Each example runs inside a savepoint on people, systems and accounts made once by the test."""

    people: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.admin = self.people["admin"]
        self.aggregator = self.people["aggregator"]
        self.owners = self.people["owners"]
        self.accounts = self.people["accounts"]
        self.systems = self.people["systems"]
        self.balance = [0] * HOLDERS
        self.issued = self.retired = self.cancelled = 0
        self.apps: list[Application] = []
        self.ever: dict[str, list[tuple[int, int]]] = {}  # every range ever issued, per series

    def teardown(self) -> None:
        try:
            assert journal.verify_journal().ok
        finally:
            transaction.savepoint_rollback(self.savepoint)

    # -- operations --------------------------------------------------------------------------------------------

    def _issue(self, app: Application) -> None:
        blocks = ledger.do_issue_units(app, issuer=self.admin)
        for b in blocks:
            for s, e in self.ever.get(b.series, []):
                assert b.end < s or b.start > e, f"number reused: {b.serial}"
            self.ever.setdefault(b.series, []).append((b.start, b.end))
            self.balance[[a.pk for a in self.accounts].index(b.account_id)] += b.quantity
            self.issued += b.quantity
        app.refresh_from_db()
        assert app.state == "issued"

    @rule(holder=st.integers(0, HOLDERS - 1), units=st.integers(1, 15), vintage=st.sampled_from([2024, 2025]))
    def issue(self, holder: int, units: int, vintage: int) -> None:
        app = approved_application(
            [(self.systems[holder], units, self.accounts[holder])],
            applicant=self.owners[holder],
            vintage=vintage,
        )
        self.apps.append(app)
        self._issue(app)

    @rule(
        a=st.integers(0, HOLDERS - 1),
        b=st.integers(0, HOLDERS - 1),
        ua=st.integers(0, 6),
        ub=st.integers(1, 6),
    )
    def issue_bundle(self, a: int, b: int, ua: int, ub: int) -> None:
        if a == b:
            return
        app = approved_application(
            [(self.systems[a], ua, self.accounts[a]), (self.systems[b], ub, self.accounts[b])],
            applicant=self.aggregator,
        )
        self.apps.append(app)
        self._issue(app)

    @rule(a=st.integers(0, HOLDERS - 1), b=st.integers(0, HOLDERS - 1), quantity=st.integers(1, 25))
    def transfer(self, a: int, b: int, quantity: int) -> None:
        if a == b:
            return
        try:
            ledger.do_transfer(
                from_account=self.accounts[a],
                to_account=self.accounts[b],
                quantity=quantity,
                actor=self.owners[a],
            )
        except DomainError as exc:
            assert exc.code == "insufficient_units" and self.balance[a] < quantity, exc
            return
        assert self.balance[a] >= quantity
        self.balance[a] -= quantity
        self.balance[b] += quantity

    @rule(a=st.integers(0, HOLDERS - 1), quantity=st.integers(1, 20))
    def retire(self, a: int, quantity: int) -> None:
        try:
            ledger.do_retire(
                account=self.accounts[a],
                quantity=quantity,
                beneficiary="stateful",
                purpose="voluntary",
                retired_on=date(2026, 1, 1),
                actor=self.owners[a],
            )
        except DomainError as exc:
            assert exc.code == "insufficient_units" and self.balance[a] < quantity, exc
            return
        assert self.balance[a] >= quantity
        self.balance[a] -= quantity
        self.retired += quantity

    @precondition(lambda self: any(a.state == "issued" for a in self.apps))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        app = data.draw(st.sampled_from([a for a in self.apps if a.state == "issued"]))
        live = SerialBlock.objects.filter(application=app)
        has_retired = live.filter(state="retired").exists()
        held = dict(
            live.filter(state="held")
            .values("account_id")
            .annotate(q=Sum(F("end") - F("start") + 1))
            .values_list("account_id", "q")
        )
        try:
            ledger.do_cancel(application=app, reason="stateful test", actor=self.admin)
        except DomainError as exc:
            assert exc.code == "units_retired" and has_retired, exc
            return
        assert not has_retired
        for account_id, q in held.items():
            self.balance[[x.pk for x in self.accounts].index(account_id)] -= q
            self.cancelled += q
        app.refresh_from_db()
        assert app.state == "approved"

    @precondition(lambda self: any(a.state == "approved" for a in self.apps))
    @rule(data=st.data())
    def reissue(self, data: st.DataObject) -> None:
        app = data.draw(st.sampled_from([a for a in self.apps if a.state == "approved"]))
        self._issue(app)

    # -- invariants --------------------------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_are_never_negative(self) -> None:
        actual = [ledger.balance(a) for a in self.accounts]
        assert actual == self.balance
        assert min(actual) >= 0

    @invariant()
    def supply_is_conserved(self) -> None:
        totals = ledger.supply_totals()
        assert totals == {
            "issued": self.issued,
            "held": sum(self.balance),
            "retired": self.retired,
            "cancelled": self.cancelled,
        }
        assert totals["issued"] == totals["held"] + totals["retired"] + totals["cancelled"]

    @invariant()
    def live_blocks_never_overlap(self) -> None:
        live = SerialBlock.objects.exclude(state="split").values_list("series", "start", "end")
        assert overlapping(live) == []


def test_random_ledger_operations_keep_the_invariants():
    owners = [make_user("owner_household") for _ in range(HOLDERS)]
    LedgerMachine.people = {
        "admin": make_admin(),
        "aggregator": make_user("aggregator"),
        "owners": owners,
        "accounts": [ledger.account_for_user(u) for u in owners],
        "systems": [make_system(u) for u in owners],
    }
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=10,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
