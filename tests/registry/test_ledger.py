"""The registry ledger against the database: accounts, issuance (four eyes, idempotent), transfers that split blocks,
final retirements, cancellation and re-issue under new numbers, client keys, the hash-chained journal and the
commands `lowcarbon issue` and `lowcarbon ledger`. Plus the journal's hash chain without a database."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone, translation

from lowcarbon.accounts.models import Membership
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain import journal as dj
from lowcarbon.registry.domain.serials import parse_serial
from lowcarbon.registry.models import (
    Application,
    Cancellation,
    IdempotentRequest,
    JournalEntry,
    Notification,
    SerialBlock,
    SerialCounter,
    SystemCarry,
    Transfer,
    Transition,
    VerificationRun,
)
from tests.factories import make_org, make_system, make_user
from tests.registry.helpers import (
    approved_application,
    assert_ledger_invariants,
    household_with_units,
    make_admin,
    org_with_admin,
)
from tests.registry.tamper import as_json, make_journal_fields_plain, payload_update

integration = [pytest.mark.django_db, pytest.mark.integration]

D = Decimal
TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def _english():
    """Messages are checked in English (the msgids); the Chinese catalogue is the translators' business."""
    with translation.override("en"):
        yield


def held(account) -> list[tuple[int, int]]:
    return list(
        SerialBlock.objects.filter(account=account, state="held")
        .order_by("series", "start")
        .values_list("start", "end")
    )


def journal_kinds() -> list[str]:
    return list(JournalEntry.objects.order_by("seq").values_list("kind", flat=True))


# ---------------------------------------------------------------------------------------------------------------
# the hash chain without a database


def _chain(n: int) -> list[tuple]:
    prev, out = dj.GENESIS, []
    for seq in range(1, n + 1):
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq)
        payload = {
            "ref": f"TR-{seq}",
            "quantity": seq,
            "kg": D("12.500"),
            "on": date(2026, 1, seq % 28 + 1),
            "名": "张三",
        }
        h = dj.entry_hash(prev, dj.entry_content(seq, at, "transfer", 7, payload))
        out.append((seq, at, "transfer", 7, payload, prev, h))
        prev = h
    return out


@pytest.mark.unit
def test_canonical_json_is_sorted_compact_utf8_with_exact_numbers():
    text = dj.canonical_json(
        {"b": D("1.50"), "a": [date(2026, 1, 2), None, True], "名": "张三", "z": D("1E+3")}
    )
    assert text == '{"a":["2026-01-02",null,true],"b":"1.50","z":"1000","名":"张三"}'
    assert (
        dj.iso_utc(datetime(2026, 1, 2, 8, 0, tzinfo=timezone.get_fixed_timezone(480)))
        == "2026-01-02T00:00:00.000000Z"
    )
    for bad in ({"x": 1.5}, {1: "a"}, {"x": D("NaN")}, {"x": object()}):
        with pytest.raises((TypeError, ValueError)):
            dj.canonical_json(bad)
    with pytest.raises(ValueError):
        dj.iso_utc(datetime(2026, 1, 1))


@pytest.mark.unit
def test_entry_content_is_the_canonical_json_of_the_five_fields():
    at = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    payload = {"serial": "PHCER-GD-X-Y-2025-00000001-00000002", "note": 'quote " and \\ 换行\n'}
    expected = dj.canonical_json(
        {"seq": 12, "at": at, "kind": "retire", "actor_id": None, "payload": payload}
    )
    assert dj.entry_content(12, at, "retire", None, payload) == expected
    assert dj.entry_content(12, dj.iso_utc(at), "retire", None, dj.canonical_json(payload)) == expected
    assert (
        dj.entry_hash(dj.GENESIS, expected)
        == __import__("hashlib").sha256((dj.GENESIS + "\n" + expected).encode()).hexdigest()
    )


@pytest.mark.unit
def test_verify_chain_accepts_a_valid_chain_and_names_the_first_broken_entry():
    chain = _chain(20)
    ok = dj.verify_chain(chain)
    assert (ok.ok, ok.count, ok.first_bad_seq, ok.head_hash) == (True, 20, None, chain[-1][6])

    altered = list(chain)
    seq, at, kind, actor, payload, prev, h = altered[7]
    altered[7] = (seq, at, kind, actor, {**payload, "quantity": 999}, prev, h)
    r = dj.verify_chain(altered)
    assert (r.ok, r.first_bad_seq, r.reason, r.count) == (False, 8, dj.HASH_MISMATCH, 8)
    assert r.head_hash == chain[6][6]

    relinked = list(chain)
    seq, at, kind, actor, payload, prev, h = relinked[4]
    relinked[4] = (seq, at, kind, actor, payload, "f" * 64, h)
    assert dj.verify_chain(relinked).reason == dj.PREV_LINK_BROKEN

    gap = chain[:10] + chain[11:]
    r = dj.verify_chain(gap)
    assert (r.first_bad_seq, r.reason) == (12, dj.SEQ_GAP)
    assert dj.verify_chain(chain[1:]).reason == dj.SEQ_GAP  # must start at 1
    assert dj.verify_chain(chain[5:], start_seq=6, start_hash=chain[4][6]).ok
    assert dj.verify_chain([]).ok


@pytest.mark.unit
def test_verify_prepared_gives_the_same_verdicts_on_the_hashed_bytes():
    chain = _chain(12)

    def prepared(rows, fields_ok=lambda seq: True):
        return [
            (s, f"{prev}\n{dj.entry_content(s, at, k, a, p)}".encode(), h, fields_ok(s))
            for s, at, k, a, p, prev, h in rows
        ]

    assert dj.verify_prepared(prepared(chain)) == dj.verify_chain(chain)
    altered = list(chain)
    s_, at, k, a, p, prev, h = altered[3]
    altered[3] = (s_, at, k, a, {**p, "quantity": 0}, prev, h)
    assert dj.verify_prepared(prepared(altered)) == dj.verify_chain(altered)
    relinked = list(chain)
    s_, at, k, a, p, prev, h = relinked[6]
    relinked[6] = (s_, at, k, a, p, "e" * 64, h)
    assert dj.verify_prepared(prepared(relinked)).reason == dj.PREV_LINK_BROKEN
    assert dj.verify_prepared(prepared(chain[:4] + chain[5:])).reason == dj.SEQ_GAP
    # a row whose fields differ is reported unless the recheck by value clears it
    rows = prepared(chain, fields_ok=lambda seq: seq != 9)
    r = dj.verify_prepared(rows)
    assert (r.first_bad_seq, r.reason, r.head_hash) == (9, dj.CONTENT_MISMATCH, chain[7][6])
    assert dj.verify_prepared(rows, recheck=lambda seq: True).ok


@pytest.mark.unit
def test_verify_contents_on_prebuilt_texts_agrees_with_verify_chain():
    chain = _chain(50)
    rows = [(s, dj.entry_content(s, at, k, a, p), prev, h) for s, at, k, a, p, prev, h in chain]
    assert dj.verify_contents(rows) == dj.verify_chain(chain)


# ---------------------------------------------------------------------------------------------------------------
# accounts and who may act


@pytest.mark.django_db
@pytest.mark.integration
def test_accounts_are_opened_once_with_readable_numbers():
    user = make_user("owner_household")
    a = ledger.account_for_user(user)
    assert a.number == f"XL-U{user.pk:06d}" and a.owner_user == user
    assert ledger.account_for_user(user) == a
    org = make_org()
    b = ledger.account_for_org(org)
    assert b.number == f"XL-O{org.pk:06d}" and b.holder_name == org.display_name
    assert journal_kinds() == ["account_open", "account_open"]
    assert journal.verify_journal().ok


@pytest.mark.django_db
@pytest.mark.integration
def test_may_act_for_owner_and_organisation_administrators_only():
    owner = make_user("owner_household")
    stranger = make_user("buyer")
    admin = make_admin()
    mine = ledger.account_for_user(owner)
    org, org_admin = org_with_admin()
    plain_member = make_user("buyer", org=org)
    org_account = ledger.account_for_org(org)

    assert ledger.may_act_for(owner, mine)
    assert not ledger.may_act_for(stranger, mine)
    assert not ledger.may_act_for(admin, mine)
    assert ledger.may_act_for(admin, mine, administrative=True)
    assert ledger.may_act_for(org_admin, org_account)
    assert not ledger.may_act_for(plain_member, org_account)
    assert not ledger.may_act_for(owner, org_account)
    assert not ledger.may_act_for(None, mine)
    owner.is_active = False
    assert not ledger.may_act_for(owner, mine)
    Membership.objects.filter(user=plain_member).update(level=Membership.Level.ADMIN)
    assert ledger.may_act_for(plain_member, org_account)


# ---------------------------------------------------------------------------------------------------------------
# issuance


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_creates_a_block_per_system_from_the_series_counter():
    admin = make_admin()
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    system = make_system(owner)
    app = approved_application(
        [(system, 37, account)], applicant=owner, carry_in_kg="120", carry_out_kg="455.5"
    )

    [block] = ledger.do_issue_units(app, issuer=admin)

    series = f"PHCER-GD-GD-PV-2022-{system.code}-2025"
    assert block.serial == f"{series}-00000001-00000037"
    assert (block.account_id, block.state, block.quantity, block.vintage) == (account.pk, "held", 37, 2025)
    assert (block.project_code, block.methodology_code, block.factor_code) == (
        system.code,
        "GD-PV-2022",
        "MEE2019-SOUTH-CM",
    )
    assert SerialCounter.objects.get(series=series).last_end == 37
    assert SystemCarry.objects.get(system=system).kg == D("455.500")
    app.refresh_from_db()
    assert (app.state, app.issuer, app.issued_at is not None) == ("issued", admin, True)
    entry = JournalEntry.objects.filter(kind="issue").get()
    assert entry.actor_id == admin.pk
    assert entry.payload["blocks"] == [
        {
            "block": block.pk,
            "serial": block.serial,
            "quantity": 37,
            "account": account.number,
            "system": system.code,
        }
    ]
    assert ledger.balance(account) == 37 and ledger.available(account) == 37

    # the next application of the same project and vintage continues the counter
    app2 = approved_application([(system, 5, account)], applicant=owner)
    [block2] = ledger.do_issue_units(app2, issuer=admin)
    assert (block2.start, block2.end) == (38, 42)


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_of_a_bundle_numbers_members_in_order_under_the_application_code():
    admin = make_admin()
    aggregator_org, aggregator = org_with_admin("aggregator")
    households = [make_user("owner_household") for _ in range(3)]
    accounts = [ledger.account_for_user(u) for u in households]
    systems = [make_system(u) for u in households]
    app = approved_application(
        [(systems[0], 4, accounts[0]), (systems[1], 0, accounts[1]), (systems[2], 6, accounts[2])],
        applicant=aggregator,
        carry_out_kg="10",
    )
    blocks = ledger.do_issue_units(app, issuer=admin)
    assert [(b.account_id, b.start, b.end, b.system_id) for b in blocks] == [
        (accounts[0].pk, 1, 4, systems[0].pk),
        (accounts[2].pk, 5, 10, systems[2].pk),
    ]
    assert {b.project_code for b in blocks} == {app.code}
    assert blocks[0].series == f"PHCER-GD-GD-PV-2022-{app.code}-2025"
    # every member's carry moves on, also the one without a whole unit
    assert SystemCarry.objects.filter(system__in=systems, kg=D(10)).count() == 3
    assert aggregator_org  # the aggregator prepared it; the households hold the units


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_refusals_change_nothing():
    admin = make_admin()
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    reviewer = make_admin()  # a registry administrator who reviewed it
    app = approved_application([(make_system(owner), 3, account)], applicant=owner, reviewer=reviewer)
    before = JournalEntry.objects.count()

    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=make_user("reviewer_city"))
    assert e.value.code == "not_registry_admin"
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=reviewer)
    assert e.value.code == "four_eyes"
    owner_admin = make_admin()
    app_by_admin = approved_application([(make_system(owner), 3, account)], applicant=owner_admin)
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app_by_admin, issuer=owner_admin)
    assert e.value.code == "four_eyes"

    Application.objects.filter(pk=app.pk).update(state="city_review")
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=admin)
    assert e.value.code == "not_approved"

    Application.objects.filter(pk=app.pk).update(state="approved", units=4)
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=admin)
    assert e.value.code == "units_mismatch"

    Application.objects.filter(pk=app.pk).update(units=3)
    app.members.update(credit_account=None)
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=admin)
    assert e.value.code == "no_credit_account"

    assert SerialBlock.objects.count() == 0 and SerialCounter.objects.count() == 0
    assert JournalEntry.objects.count() == before
    assert Application.objects.get(pk=app.pk).state == "approved"


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_twice_is_refused_but_a_repeated_client_key_returns_the_same_blocks():
    admin = make_admin()
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    app = approved_application([(make_system(owner), 8, account)], applicant=owner)

    first = ledger.do_issue_units(app, issuer=admin, client_key="monthly-2026-03")
    again = ledger.do_issue_units(app, issuer=admin, client_key="monthly-2026-03")
    assert [b.pk for b in again] == [b.pk for b in first]
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=admin)
    assert e.value.code == "already_issued"
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(app, issuer=admin, client_key="another-key")
    assert e.value.code == "already_issued"
    other = approved_application([(make_system(owner), 1, account)], applicant=owner)
    with pytest.raises(DomainError) as e:
        ledger.do_issue_units(other, issuer=admin, client_key="monthly-2026-03")
    assert e.value.code == "idempotency_key_reused"
    assert SerialBlock.objects.count() == 1 and journal_kinds().count("issue") == 1


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_batch_checks_each_application_on_its_own():
    admin = make_admin()
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    system = make_system(owner)
    first = approved_application([(system, 5, account)], applicant=owner)
    second = approved_application([(system, 2, account)], applicant=owner)  # same project and vintage
    by_reviewer = approved_application([(make_system(owner), 3, account)], applicant=owner, reviewer=admin)
    done = approved_application([(make_system(owner), 1, account)], applicant=owner)
    ledger.do_issue_units(done, issuer=admin)
    entries = JournalEntry.objects.count()

    outcomes = ledger.do_issue_batch([second, by_reviewer, first, done, 987654], issuer=admin)

    assert [(o.code, o.issued, o.error.code if o.error else "") for o in outcomes] == [
        (second.code, True, ""),
        (by_reviewer.code, False, "four_eyes"),
        (first.code, True, ""),
        (done.code, False, "already_issued"),
        ("", False, "not_found"),
    ]
    # numbers of one series follow the applications' order in the database, not the order given
    assert [(b.start, b.end) for b in outcomes[2].blocks] == [(1, 5)]
    assert [(b.start, b.end) for b in outcomes[0].blocks] == [(6, 7)]
    assert Application.objects.get(pk=by_reviewer.pk).state == "approved"
    assert JournalEntry.objects.count() == entries + 2
    assert ledger.balance(account) == 8
    with pytest.raises(DomainError) as e:
        ledger.do_issue_batch([by_reviewer], issuer=owner)
    assert e.value.code == "not_registry_admin"
    assert ledger.do_issue_batch([], issuer=admin) == []
    assert journal.verify_journal().ok
    assert_ledger_invariants()


# ---------------------------------------------------------------------------------------------------------------
# transfers


@pytest.mark.django_db
@pytest.mark.integration
def test_partial_transfer_splits_the_block_with_lineage():
    admin = make_admin()
    owner, source, [block] = household_with_units(37, issuer=admin)
    buyer = make_user("buyer")
    target = ledger.account_for_user(buyer)

    t = ledger.do_transfer(from_account=source, to_account=target, quantity=10, actor=owner)

    assert t.number == f"TR-{timezone.localdate().year}-{t.pk:06d}"
    assert Transfer.objects.get(pk=t.pk).number == t.number
    block.refresh_from_db()
    assert block.state == "split"
    moved, kept = block.children.order_by("start")
    assert (moved.start, moved.end, moved.account_id, moved.state) == (1, 10, target.pk, "held")
    assert (kept.start, kept.end, kept.account_id, kept.state) == (11, 37, source.pk, "held")
    assert list(Transfer.objects.get(pk=t.pk).blocks.all()) == [moved]
    assert ledger.balance(source) == 27 and ledger.balance(target) == 10
    entry = JournalEntry.objects.get(kind="transfer")
    assert entry.payload["number"] == t.number and entry.payload["quantity"] == 10
    assert entry.payload["blocks"] == [
        {
            "block": moved.pk,
            "serial": moved.serial,
            "quantity": 10,
            "split_from": block.serial,
            "kept": kept.serial,
        }
    ]
    # the rest moves whole: no further split
    ledger.do_transfer(from_account=source, to_account=target, quantity=27, actor=owner)
    kept.refresh_from_db()
    assert (kept.state, kept.account_id) == ("held", target.pk)
    assert ledger.balance(source) == 0 and held(target) == [(1, 10), (11, 37)]
    assert_ledger_invariants()


@pytest.mark.django_db
@pytest.mark.integration
def test_transfer_moves_oldest_vintage_first_and_can_name_blocks():
    admin = make_admin()
    owner = make_user("owner_household")
    source = ledger.account_for_user(owner)
    system = make_system(owner)
    [new] = ledger.do_issue_units(
        approved_application([(system, 5, source)], applicant=owner, vintage=2025), issuer=admin
    )
    [old] = ledger.do_issue_units(
        approved_application([(system, 4, source)], applicant=owner, vintage=2024), issuer=admin
    )
    target = ledger.account_for_user(make_user("buyer"))

    ledger.do_transfer(from_account=source, to_account=target, quantity=6, actor=owner)
    assert sorted(
        (b.vintage, b.quantity) for b in SerialBlock.objects.filter(account=target, state="held")
    ) == [
        (2024, 4),
        (2025, 2),
    ]
    old.refresh_from_db()
    assert old.account_id == target.pk and old.state == "held"

    # naming a block takes the units from that block only
    [rest] = SerialBlock.objects.filter(account=source, state="held")
    ledger.do_transfer(from_account=source, to_account=target, quantity=1, actor=owner, block_ids=[rest.pk])
    assert ledger.balance(source) == 2
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(
            from_account=source, to_account=target, quantity=1, actor=owner, block_ids=[old.pk]
        )
    assert e.value.code == "block_unavailable"
    assert_ledger_invariants()


@pytest.mark.django_db
@pytest.mark.integration
def test_overdraft_is_refused_naming_the_figures_and_changes_nothing():
    admin = make_admin()
    owner, source, _ = household_with_units(12, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))
    before = (JournalEntry.objects.count(), SerialBlock.objects.count(), Transfer.objects.count())

    with pytest.raises(DomainError) as e:
        ledger.do_transfer(from_account=source, to_account=target, quantity=13, actor=owner)
    assert e.value.code == "insufficient_units" and e.value.field == "quantity"
    assert source.number in e.value.message and "12" in e.value.message and "13" in e.value.message

    # units reserved by a market order are not available either
    SerialBlock.objects.filter(account=source).update(locked_by="MO-1")
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(from_account=source, to_account=target, quantity=1, actor=owner)
    assert e.value.code == "insufficient_units" and "0" in e.value.message
    assert ledger.balance(source) == 12 and ledger.available(source) == 0
    assert (JournalEntry.objects.count(), SerialBlock.objects.count(), Transfer.objects.count()) == before


@pytest.mark.django_db
@pytest.mark.integration
def test_transfer_refusals():
    admin = make_admin()
    owner, source, [block] = household_with_units(5, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))
    cases = [
        ({"quantity": 0, "actor": owner}, "invalid_quantity"),
        ({"quantity": -2, "actor": owner}, "invalid_quantity"),
        ({"quantity": True, "actor": owner}, "invalid_quantity"),
        ({"quantity": "3", "actor": owner}, "invalid_quantity"),
        ({"quantity": 1, "actor": make_user("buyer")}, "not_allowed"),
        ({"quantity": 1, "actor": admin}, "not_allowed"),
    ]
    for kwargs, code in cases:
        with pytest.raises(DomainError) as e:
            ledger.do_transfer(from_account=source, to_account=target, **kwargs)
        assert e.value.code == code, kwargs
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(from_account=source, to_account=source, quantity=1, actor=owner)
    assert e.value.code == "same_account"
    SerialBlock.objects.filter(pk=block.pk).update(locked_by="MO-7")
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(
            from_account=source, to_account=target, quantity=1, actor=owner, block_ids=[block.pk]
        )
    assert e.value.code == "block_locked" and "MO-7" in e.value.message
    assert Transfer.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.integration
def test_an_organisation_administrator_transfers_for_the_organisation():
    admin = make_admin()
    org, org_admin = org_with_admin()
    org_account = ledger.account_for_org(org)
    ledger.do_issue_units(
        approved_application([(make_system(org=org), 9, org_account)], applicant=org_admin), issuer=admin
    )
    target = ledger.account_for_user(make_user("buyer"))
    ledger.do_transfer(from_account=org_account, to_account=target, quantity=4, actor=org_admin)
    assert ledger.balance(org_account) == 5
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(
            from_account=org_account, to_account=target, quantity=1, actor=make_user("buyer", org=org)
        )
    assert e.value.code == "not_allowed"


@pytest.mark.django_db
@pytest.mark.integration
def test_a_repeated_transfer_key_returns_the_first_transfer():
    admin = make_admin()
    owner, source, _ = household_with_units(20, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))

    first = ledger.do_transfer(
        from_account=source, to_account=target, quantity=3, actor=owner, client_key="k-1"
    )
    again = ledger.do_transfer(
        from_account=source, to_account=target, quantity=3, actor=owner, client_key="k-1"
    )
    assert again.pk == first.pk and again.number == first.number
    assert Transfer.objects.count() == 1 and ledger.balance(target) == 3
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(from_account=source, to_account=target, quantity=4, actor=owner, client_key="k-1")
    assert e.value.code == "idempotency_key_reused"
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(
            from_account=source, to_account=target, quantity=1, actor=owner, client_key="x" * 101
        )
    assert e.value.code == "invalid_client_key"
    # keys belong to their actor: the same key by someone else is another request
    other_owner, other_source, _ = household_with_units(5, issuer=admin)
    ledger.do_transfer(
        from_account=other_source, to_account=target, quantity=1, actor=other_owner, client_key="k-1"
    )
    assert Transfer.objects.count() == 2 and IdempotentRequest.objects.filter(key="k-1").count() == 2


# ---------------------------------------------------------------------------------------------------------------
# retirement


@pytest.mark.django_db
@pytest.mark.integration
def test_retirement_is_final():
    admin = make_admin()
    owner, account, [block] = household_with_units(30, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))

    r = ledger.do_retire(
        account=account,
        quantity=12,
        beneficiary="小榄镇马拉松 2026",
        purpose="event_neutrality",
        retired_on=TODAY,
        actor=owner,
        note="赛事碳中和",
    )
    assert r.number == f"RT-{timezone.localdate().year}-{r.pk:06d}"
    assert (r.quantity, r.beneficiary, r.retired_on, r.account_id) == (
        12,
        "小榄镇马拉松 2026",
        TODAY,
        account.pk,
    )
    [retired] = r.blocks.all()
    assert (retired.start, retired.end, retired.state, retired.parent_id) == (1, 12, "retired", block.pk)
    assert ledger.balance(account) == 18
    entry = JournalEntry.objects.get(kind="retire")
    assert entry.payload["beneficiary"] == "小榄镇马拉松 2026" and entry.payload["retired_on"] == "2026-03-01"

    for call in (
        lambda: ledger.do_transfer(
            from_account=account, to_account=target, quantity=1, actor=owner, block_ids=[retired.pk]
        ),
        lambda: ledger.do_retire(
            account=account,
            quantity=1,
            beneficiary="x",
            purpose="voluntary",
            retired_on=TODAY,
            actor=owner,
            block_ids=[retired.pk],
        ),
    ):
        with pytest.raises(DomainError) as e:
            call()
        assert e.value.code == "block_retired"
    with pytest.raises(DomainError) as e:
        ledger.do_cancel(application=block.application, reason="mistake", actor=admin)
    assert e.value.code == "units_retired" and "12" in e.value.message
    retired.refresh_from_db()
    assert (retired.state, retired.account_id) == ("retired", account.pk)
    assert_ledger_invariants()


@pytest.mark.django_db
@pytest.mark.integration
def test_retirement_checks_its_fields_and_its_key():
    admin = make_admin()
    owner, account, _ = household_with_units(10, issuer=admin)
    base = {
        "account": account,
        "quantity": 2,
        "beneficiary": "B",
        "purpose": "voluntary",
        "retired_on": TODAY,
        "actor": owner,
    }
    for change, code in [
        ({"beneficiary": "  "}, "beneficiary_required"),
        ({"beneficiary": "x" * 201}, "beneficiary_too_long"),
        ({"purpose": "fun"}, "invalid_purpose"),
        ({"retired_on": timezone.localdate() + timedelta(days=1)}, "invalid_retired_on"),
        ({"retired_on": "2026-01-01"}, "invalid_retired_on"),
        ({"actor": make_user("buyer")}, "not_allowed"),
        ({"quantity": 11}, "insufficient_units"),
    ]:
        with pytest.raises(DomainError) as e:
            ledger.do_retire(**{**base, **change})
        assert e.value.code == code, change
    first = ledger.do_retire(**base, client_key="rt-1")
    again = ledger.do_retire(**base, client_key="rt-1")
    assert first.pk == again.pk and ledger.balance(account) == 8
    with pytest.raises(DomainError) as e:
        ledger.do_retire(**{**base, "beneficiary": "C"}, client_key="rt-1")
    assert e.value.code == "idempotency_key_reused"


# ---------------------------------------------------------------------------------------------------------------
# cancellation and re-issue


@pytest.mark.django_db
@pytest.mark.integration
def test_cancel_wherever_the_units_are_then_reissue_under_new_numbers():
    admin = make_admin()
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    system = make_system(owner)
    app = approved_application([(system, 20, account)], applicant=owner, carry_in_kg="300", carry_out_kg="80")
    [block] = ledger.do_issue_units(app, issuer=admin)
    buyer = make_user("buyer")
    target = ledger.account_for_user(buyer)
    ledger.do_transfer(from_account=account, to_account=target, quantity=7, actor=owner)
    assert SystemCarry.objects.get(system=system).kg == D(80)

    for actor, reason, code in [(owner, "wrong", "not_registry_admin"), (admin, "  ", "reason_required")]:
        with pytest.raises(DomainError) as e:
            ledger.do_cancel(application=app, reason=reason, actor=actor)
        assert e.value.code == code

    c = ledger.do_cancel(application=app, reason="meter readings double counted", actor=admin)

    assert c.number == f"CX-{timezone.localdate().year}-{c.pk:06d}" and c.quantity == 20
    assert sorted((b.start, b.end, b.state) for b in c.blocks.all()) == [
        (1, 7, "cancelled"),
        (8, 20, "cancelled"),
    ]
    assert ledger.balance(account) == 0 and ledger.balance(target) == 0
    assert ledger.supply_totals() == {"issued": 20, "held": 0, "retired": 0, "cancelled": 20}
    assert SystemCarry.objects.get(system=system).kg == D(300)
    app.refresh_from_db()
    assert (app.state, app.issuer, app.issued_at) == ("approved", None, None)
    assert Transition.objects.filter(
        application=app, from_state="issued", to_state="approved", comment="meter readings double counted"
    ).exists()
    with pytest.raises(DomainError) as e:
        ledger.do_cancel(application=app, reason="again", actor=admin)
    assert e.value.code == "not_issued"
    cancelled = SerialBlock.objects.get(pk=c.blocks.order_by("start").first().pk)
    with pytest.raises(DomainError) as e:
        ledger.do_transfer(
            from_account=target, to_account=account, quantity=1, actor=buyer, block_ids=[cancelled.pk]
        )
    assert e.value.code == "block_cancelled"

    [again] = ledger.do_issue_units(app, issuer=admin)
    assert (again.start, again.end) == (21, 40) and again.series == block.series  # numbers never reused
    assert ledger.supply_totals() == {"issued": 40, "held": 20, "retired": 0, "cancelled": 20}
    assert SystemCarry.objects.get(system=system).kg == D(80)
    assert journal_kinds()[-3:] == ["transfer", "cancel", "issue"]
    cancel_entry = JournalEntry.objects.get(kind="cancel")
    assert cancel_entry.payload["reason"] == "meter readings double counted"
    assert {b["account"] for b in cancel_entry.payload["blocks"]} == {account.number, target.number}
    assert Cancellation.objects.count() == 1
    assert_ledger_invariants()
    assert journal.verify_journal().ok


# ---------------------------------------------------------------------------------------------------------------
# reading


@pytest.mark.django_db
@pytest.mark.integration
def test_find_by_serial_resolves_any_unit_to_its_live_block_and_history_follows_the_lineage():
    admin = make_admin()
    owner, source, [root] = household_with_units(50, issuer=admin)
    buyer = make_user("buyer")
    target = ledger.account_for_user(buyer)
    t = ledger.do_transfer(from_account=source, to_account=target, quantity=20, actor=owner)
    r = ledger.do_retire(
        account=target, quantity=5, beneficiary="B", purpose="voluntary", retired_on=TODAY, actor=buyer
    )

    unit = f"{root.series}-00000003"
    found = ledger.find_by_serial(unit)
    assert (found.start, found.end, found.state) == (1, 5, "retired")
    assert ledger.find_by_serial(f"{root.series}-00000044").account_id == source.pk
    assert ledger.find_by_serial(f"{root.series}-00000006-00000009").start == 6
    assert ledger.find_by_serial(root.serial).start == 1  # its first unit's live block
    assert ledger.find_by_serial(f"{root.series}-00000051") is None
    assert ledger.find_by_serial("PHCER-GD-GD-PV-2022-NOPE-2025-00000001") is None
    with pytest.raises(DomainError) as e:
        ledger.find_by_serial("not a serial")
    assert e.value.code == "invalid_serial"

    history = ledger.block_history(found)
    assert [b.pk for b in history["lineage"]][0] == root.pk and history["lineage"][-1] == found
    assert [x.pk for x in history["transfers"]] == [t.pk]
    assert [x.pk for x in history["retirements"]] == [r.pk]
    assert [e.kind for e in history["entries"]] == ["issue", "transfer", "retire"]
    root_history = ledger.block_history(root)
    assert {b.state for b in root_history["descendants"]} == {"split", "held", "retired"}

    assert ledger.holdings(target) == [
        {
            "series": root.series,
            "vintage": 2025,
            "project_code": root.project_code,
            "methodology_code": "GD-PV-2022",
            "quantity": 15,
            "locked": 0,
            "blocks": 1,
        }
    ]
    assert ledger.supply_totals() == {"issued": 50, "held": 45, "retired": 5, "cancelled": 0}
    assert parse_serial(found.serial).quantity == 5


# ---------------------------------------------------------------------------------------------------------------
# the journal


@pytest.mark.django_db
@pytest.mark.integration
def test_journal_append_chains_entries_in_the_callers_transaction():
    with transaction.atomic():
        a = journal.append("note", {"x": D("1.50"), "who": "张三"}, actor=5)
        b = journal.append("note", {"x": 2})
    assert (a.seq, b.seq, b.prev_hash, a.prev_hash) == (1, 2, a.hash, dj.GENESIS)
    stored = JournalEntry.objects.get(seq=1)
    assert stored.payload == {"x": "1.50", "who": "张三"} and stored.actor_id == 5
    assert (
        stored.canonical
        == a.canonical
        == dj.entry_content(1, stored.at, "note", 5, {"x": "1.50", "who": "张三"})
    )
    assert stored.hash == dj.entry_hash(dj.GENESIS, stored.canonical)
    assert b.at >= a.at
    with pytest.raises(ValueError), transaction.atomic():
        journal.append("Bad Kind", {})


@pytest.mark.django_db
@pytest.mark.integration
def test_journal_append_many_writes_the_same_chain_as_single_appends():
    tricky = {"note": 'quote " backslash \\ tab \t newline \n 碳普惠', "kg": D("0.125"), "on": TODAY}
    with transaction.atomic():
        one = journal.append("note", {"n": 1}, actor=None)
        many = journal.append_many([("note", {**tricky, "n": n}, 7) for n in range(2, 5)])
        last = journal.append("note", {"n": 5})
    assert (
        [e.seq for e in many] == [2, 3, 4]
        and many[0].prev_hash == one.hash
        and last.prev_hash == many[-1].hash
    )
    stored = JournalEntry.objects.get(seq=3)
    assert stored.payload == {"note": tricky["note"], "kg": "0.125", "on": "2026-03-01", "n": 3}
    assert (stored.canonical, stored.hash) == (many[1].canonical, many[1].hash)
    for method in _methods():
        assert journal.verify_journal(method=method).ok, method
    with transaction.atomic():
        assert journal.append_many([]) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.integration
def test_journal_append_refuses_to_run_outside_a_transaction():
    with pytest.raises(TransactionManagementError):
        journal.append("note", {"x": 1})
    assert JournalEntry.objects.count() == 0


def _busy_ledger():
    admin = make_admin()
    owner, source, _ = household_with_units(40, issuer=admin)
    target = ledger.account_for_user(make_user("buyer"))
    for q in (3, 4, 5):
        ledger.do_transfer(from_account=source, to_account=target, quantity=q, actor=owner)
    return admin


def _methods():
    return ["stream", "sql"] if connection.vendor == "postgresql" else ["stream"]


def _sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cur:
        cur.execute(statement, params)


@pytest.mark.django_db
@pytest.mark.integration
def test_the_database_refuses_an_edit_of_an_entrys_fields_alone():
    _busy_ledger()
    victim = JournalEntry.objects.filter(kind="transfer").order_by("seq")[1]
    altered = as_json({**victim.payload, "quantity": 400})
    for statement, params in (
        (payload_update(connection.vendor), [altered, victim.seq]),
        ("UPDATE registry_journalentry SET kind = 'retire' WHERE seq = %s", [victim.seq]),
        ("UPDATE registry_journalentry SET actor_id = 1 WHERE seq = %s", [victim.seq]),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            _sql(statement, params)
    stored = JournalEntry.objects.get(seq=victim.seq)
    assert (stored.payload, stored.kind, stored.at) == (victim.payload, "transfer", victim.at)
    assert stored.payload == json.loads(stored.canonical)["payload"]
    assert dj.iso_utc(stored.at) == json.loads(stored.canonical)["at"]
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.ok, r.fields) == (True, dj.FIELDS_GENERATED), method


@pytest.mark.django_db
@pytest.mark.integration
def test_ledger_verify_names_an_entry_whose_payload_was_altered():
    _busy_ledger()
    out = io.StringIO()
    call_command("ledger", "verify", stdout=out)
    n = JournalEntry.objects.count()
    assert "Journal OK" in out.getvalue() and f"{n} entries" in out.getvalue()

    # the columns made plain again (the only way to edit one alone), then the quantity of a transfer rewritten
    make_journal_fields_plain(connection.vendor, _sql)
    victim = JournalEntry.objects.filter(kind="transfer").order_by("seq")[1]
    _sql(payload_update(connection.vendor), [as_json({**victim.payload, "quantity": 400}), victim.seq])

    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.ok, r.first_bad_seq, r.reason, r.fields) == (
            False,
            victim.seq,
            dj.CONTENT_MISMATCH,
            dj.FIELDS_COMPARED,
        ), method
    err = io.StringIO()
    with pytest.raises(CommandError) as e:
        call_command("ledger", "verify", stderr=err)
    assert f"entry {victim.seq} " in str(e.value) and "transfer" in str(e.value)
    assert "content_mismatch" in str(e.value)
    assert "no longer generates" in err.getvalue()


@pytest.mark.django_db
@pytest.mark.integration
def test_verify_finds_an_altered_hashed_text_a_broken_link_and_a_missing_entry():
    _busy_ledger()
    entries = list(JournalEntry.objects.order_by("seq"))
    third, fifth = entries[2], entries[4]
    JournalEntry.objects.filter(seq=fifth.seq).update(
        canonical=fifth.canonical.replace('"quantity":', '"quantity":1')
    )
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.first_bad_seq, r.reason, r.head_hash) == (fifth.seq, dj.HASH_MISMATCH, entries[3].hash), (
            method
        )

    JournalEntry.objects.filter(seq=third.seq).update(prev_hash="a" * 64)
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.first_bad_seq, r.reason, r.count) == (third.seq, dj.PREV_LINK_BROKEN, 3), method

    JournalEntry.objects.filter(seq=entries[1].seq).delete()
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.first_bad_seq, r.reason) == (third.seq, dj.SEQ_GAP), method
    with pytest.raises(CommandError) as e:
        call_command("ledger", "verify", "--chain-only")
    assert f"entry {third.seq} " in str(e.value)


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ledger_verify_on_a_read_only_database_compares_every_entry_and_says_why():
    """As on a read-only standby: the schema check's temporary table and the record of the run are refused, the
    verification itself still runs (each entry's fields compared with its hashed text) and says what it could not
    do, without claiming the table was altered."""
    _busy_ledger()
    runs = VerificationRun.objects.count()
    _sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    try:
        assert journal.fields_generated() is None
        for method in _methods():
            r = journal.verify_journal(method=method)
            assert (r.ok, r.count, r.fields) == (
                True,
                JournalEntry.objects.count(),
                dj.FIELDS_COMPARED_UNREAD,
            )
        out, err = io.StringIO(), io.StringIO()
        call_command("ledger", "verify", stdout=out, stderr=err)
    finally:
        _sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
    assert "Journal OK" in out.getvalue()
    assert "definition could not be read" in err.getvalue()
    assert "could not be recorded" in err.getvalue()
    assert "no longer generates" not in err.getvalue()
    assert VerificationRun.objects.count() == runs
    assert journal.fields_generated() is True


@pytest.mark.django_db
@pytest.mark.integration
def test_a_payload_rewritten_with_the_same_value_still_verifies():
    _busy_ledger()
    make_journal_fields_plain(connection.vendor, _sql)
    e = JournalEntry.objects.filter(kind="transfer").first()
    # the same value in another spelling (spaces, keys in another order) is not an alteration
    spelled = json.dumps(dict(reversed(list(e.payload.items()))), ensure_ascii=False, indent=1)
    _sql(payload_update(connection.vendor), [spelled, e.seq])
    for method in _methods():
        r = journal.verify_journal(method=method)
        assert (r.ok, r.fields) == (True, dj.FIELDS_COMPARED), method


@pytest.mark.django_db
@pytest.mark.integration
def test_export_lines_recompute_with_the_pure_verifier(tmp_path):
    _busy_ledger()
    path = tmp_path / "journal.jsonl"
    out = io.StringIO()
    call_command("ledger", "export", str(path), stdout=out)
    n = JournalEntry.objects.count()
    assert f"{n} entries exported" in out.getvalue()
    with path.open(encoding="utf-8") as fh:
        header, entries = journal.read_export(fh)
        result = dj.verify_chain(entries)
    assert (
        header["entries"] == n
        and header["head_hash"] == result.head_hash
        and "SHA-256" in header["how_to_verify"]
    )
    assert result.ok and result.count == n
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == n + 1
    first = json.loads(lines[1])
    assert set(first) == {"seq", "at", "kind", "actor_id", "payload", "prev_hash", "hash"}

    # an altered line is found by the same verifier
    tampered = [json.loads(x) for x in lines[1:]]
    tampered[-1]["payload"]["quantity"] = 99
    r = dj.verify_chain(
        (e["seq"], e["at"], e["kind"], e["actor_id"], e["payload"], e["prev_hash"], e["hash"])
        for e in tampered
    )
    assert (r.ok, r.first_bad_seq) == (False, n)

    stdout = io.StringIO()
    call_command("ledger", "export", "-", stdout=stdout, stderr=io.StringIO())
    assert len(stdout.getvalue().splitlines()) == n + 1


# ---------------------------------------------------------------------------------------------------------------
# lowcarbon issue


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_command_needs_a_registry_administrator_and_reports_each_application():
    admin = make_admin(username="issuer")
    make_user("reviewer_city", username="notadmin")
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    a1 = approved_application([(make_system(owner), 3, account)], applicant=owner)
    a2 = approved_application([(make_system(owner), 4, account)], applicant=owner, reviewer=admin)

    for argv, text in [
        (["issue", a1.code, "--issuer", "nobody"], "No active user"),
        (["issue", a1.code, "--issuer", "notadmin"], "not a registry administrator"),
        (["issue", "--issuer", "issuer"], "at least one application"),
    ]:
        with pytest.raises(CommandError) as e:
            call_command(*argv)
        assert text in str(e.value)
    assert SerialBlock.objects.count() == 0

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as e:
        call_command("issue", "--all-approved", "NOPE-1", "--issuer", "issuer", stdout=out, stderr=err)
    assert "1 applications issued, 2 refused, 3 units" in str(e.value)
    assert f"{a1.code}: PHCER-GD-" in out.getvalue() and f"→ {account.number}" in out.getvalue()
    assert "four_eyes" in err.getvalue() and "NOPE-1" in err.getvalue()
    assert Application.objects.get(pk=a1.pk).state == "issued"
    assert Transition.objects.filter(application=a1, to_state="issued").exists()
    [note] = Notification.objects.filter(user=owner)
    assert a1.code in note.message and note.link.endswith(f"{a1.code}/")

    second_admin = make_admin(username="issuer2")
    out = io.StringIO()
    call_command("issue", a2.code, "--issuer", second_admin.username, "--json", stdout=out)
    [outcome] = json.loads(out.getvalue())
    assert outcome["issued"] and outcome["quantity"] == 4
    assert outcome["blocks"][0]["account"] == account.number
    assert journal.verify_journal().ok


@pytest.mark.django_db
@pytest.mark.integration
def test_issue_command_tells_the_households_of_a_bundle():
    make_admin(username="issuer")
    _, aggregator = org_with_admin("aggregator")
    households = [make_user("owner_household") for _ in range(2)]
    members = [(make_system(u), 2, ledger.account_for_user(u)) for u in households]
    app = approved_application(members, applicant=aggregator)
    call_command("issue", app.code, "--issuer", "issuer", stdout=io.StringIO())
    for u in households:
        [note] = Notification.objects.filter(user=u)
        assert app.code in note.message
    assert Notification.objects.filter(user=aggregator).count() == 1
    assert [ledger.balance(acc) for _, _, acc in members] == [2, 2]


@pytest.mark.integration
def test_a_large_sqlite_journal_is_verified_in_parallel_ranges_with_the_sequential_verdict(tmp_path):
    import multiprocessing
    import sqlite3

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    path = str(tmp_path / "journal.sqlite3")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE registry_journalentry (seq integer primary key, at text, kind text, actor_id integer, "
        "payload text, prev_hash text, hash text, canonical text)"
    )
    prev = dj.GENESIS
    for seq in range(1, 3001):
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq, microseconds=seq % 7)
        payload = dj.canonical_json({"ref": f"TR-{seq}", "quantity": seq % 9, "名": "张三"})
        content = dj.entry_content(seq, at, "transfer", 3, payload)
        digest = dj.entry_hash(prev, content)
        stored_at = (
            at.strftime("%Y-%m-%d %H:%M:%S.%f") if at.microsecond else at.strftime("%Y-%m-%d %H:%M:%S")
        )
        db.execute(
            "INSERT INTO registry_journalentry VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, stored_at, "transfer", 3, payload, prev, digest, content),
        )
        prev = digest
    db.commit()

    r = journal.verify_sqlite_file(path, 3000, workers=3)
    assert (r.ok, r.count, r.head_hash) == (True, 3000, prev)
    # the same value spelt otherwise is not an alteration; another value is
    db.execute(
        "UPDATE registry_journalentry SET payload = ? WHERE seq = 500",
        [json.dumps({"ref": "TR-500", "quantity": 500 % 9, "名": "张三"})],
    )
    db.execute(
        "UPDATE registry_journalentry SET payload = ? WHERE seq = 2100", ['{"ref":"TR-2100","quantity":8}']
    )
    db.commit()
    r = journal.verify_sqlite_file(path, 3000, workers=3)
    assert (r.ok, r.first_bad_seq, r.reason, r.count) == (False, 2100, dj.CONTENT_MISMATCH, 2100)
    db.execute("DELETE FROM registry_journalentry WHERE seq = 1000")  # the last entry of the first range
    db.commit()
    r = journal.verify_sqlite_file(path, 3000, workers=3)
    assert (r.first_bad_seq, r.reason) == (1001, dj.SEQ_GAP)
    assert journal.verify_sqlite_file(path, 3000, chain_only=True, workers=2).first_bad_seq == 1001
    db.close()
