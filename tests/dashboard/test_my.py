"""The role dashboard at /my/: each role sees its panels and only its own data; figures match the tables they come
from; the journal's last verification is recorded by `lowcarbon ledger verify` and shown with its age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from lowcarbon.accounts.models import Role
from lowcarbon.dashboard import services
from lowcarbon.metering.models import DailyRollup, IngestBatch, Meter, MonthlyRollup, QuarantinedRow
from lowcarbon.pv.plausibility import clear_sky_monthly_bounds
from lowcarbon.registry import ledger
from lowcarbon.registry.models import Application, VerificationRun
from tests.dashboard.helpers import system_in
from tests.factories import PASSWORD, make_org, make_user
from tests.registry.app_helpers import consent
from tests.registry.cert_helpers import issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def test_anonymous_is_sent_to_log_in():
    for url in (
        "/my/",
        "/my/exports/",
        "/my/exports/systems.xlsx",
        "/my/reports/",
        "/my/reports/town-2025-6.pdf",
    ):
        resp = Client().get(url)
        assert resp.status_code == 302 and "/login/" in resp["Location"], url


def test_owner_sees_generation_against_the_clear_sky_bound(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD, username="alice")
    mine = system_in("dongqu", alice, capacity_kwp="6", kwh="600", months=[6])
    other = system_in("dongqu", make_user(Role.OWNER_HOUSEHOLD), kwh="777", months=[6])
    panel = services.owner_panel(alice, date(2025, 6, 1))
    assert [r.system.code for r in panel["rows"]] == [mine.code]
    row = panel["rows"][0]
    assert row.generation_kwh == Decimal("600")
    bound = clear_sky_monthly_bounds([mine], 2025)[mine.pk][5]
    assert row.bound_kwh == bound and row.bound_to_date_kwh == bound.quantize(Decimal("0.01"))
    assert row.ratio_pct == (Decimal(600) * 100 / row.bound_to_date_kwh).quantize(Decimal("0.1"))
    body = client_for(alice).get("/my/?month=2025-06").content.decode()
    assert mine.code in body and other.code not in body
    assert "晴空上限" in body and "我的光伏系统" in body
    assert "审核队列" not in body.split("<main>")[1] and "平台运行状况" not in body


def test_owner_month_defaults_to_latest_month_with_readings(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD)
    system_in("dongqu", alice, kwh="500", months=[3, 4])
    panel = services.owner_panel(alice)
    assert panel["choice"].month == date(2025, 4, 1) and panel["choice"].fallback
    body = client_for(alice).get("/my/").content.decode()
    assert "尚无读数" in body and "2025-04" in body


def test_bound_to_date_is_prorated_in_the_current_month(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", alice)
    now = timezone.make_aware(datetime(2026, 6, 11, 0, 0))  # ten days of June (Beijing time)
    panel = services.owner_panel(alice, date(2026, 6, 1), now=now)
    row = panel["rows"][0]
    bound = clear_sky_monthly_bounds([system], 2026)[system.pk][5]
    assert row.bound_to_date_kwh == (bound / 3).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_owner_units_and_indicative_value(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", alice, kwh="600")
    account = ledger.account_for_user(alice)
    issue([(system, 7, account)], applicant=alice)
    panel = services.owner_panel(alice)
    assert panel["held"] == 7
    price = services._indicative_price()
    if price is None:
        assert panel["indicative_value"] is None
    else:
        assert panel["indicative_value"] == (price * 7).quantize(Decimal("0.01"))
    body = client_for(alice).get("/my/").content.decode()
    assert "仅供参考，非报价" in body
    assert any(a.code in body for a in Application.objects.all())


def test_aggregator_completeness_equals_rollup_coverage(media_root):
    org = make_org("aggregator")
    agg = make_user(Role.AGGREGATOR, org=org, username="agg")
    owner = make_user(Role.OWNER_HOUSEHOLD)
    managed = system_in("dongqu", owner)
    consent(managed, org)
    not_managed = system_in("dongqu", make_user(Role.OWNER_HOUSEHOLD))
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=managed.pk)
    # June 2025: 27 of 30 days reported, each fully covered
    for d in range(1, 28):
        DailyRollup.objects.create(
            meter_id=meter.pk, day=date(2025, 6, d), energy=20, n_readings=24, covered_s=86400
        )
    MonthlyRollup.objects.create(
        meter_id=meter.pk, month=date(2025, 6, 1), energy=540, n_readings=648, covered_s=27 * 86400
    )
    panel = services.aggregator_panel(agg, date(2025, 6, 1))
    assert [r.system.code for r in panel["rows"]] == [managed.code]
    comp = panel["rows"][0].completeness
    assert comp.interval_pct == Decimal("90.0") and (comp.days_with_data, comp.days_expected) == (27, 30)
    assert panel["generation_kwh"] == Decimal(540)
    body = client_for(agg).get("/my/?month=2025-06").content.decode()
    assert managed.code in body and not_managed.code not in body
    assert "90.0%" in body and "27 / 30" in body


def test_reviewer_sees_the_registry_queue_with_waiting_days(media_root):
    from lowcarbon.registry.applications import reviewer_queue
    from tests.registry.app_helpers import isolation_application

    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", owner, kwh="600")
    app = isolation_application(owner, system)
    Application.objects.filter(pk=app.pk).update(
        state=Application.State.SUBMITTED, state_since=timezone.now() - timedelta(days=9)
    )
    reviewer = make_user(Role.REVIEWER_CITY)
    panel = services.reviewer_panel(reviewer)
    assert (
        [(i.application.code, i.days_waiting) for i in panel["queue"]]
        == [(i.application.code, i.days_waiting) for i in reviewer_queue(reviewer)]
        == [(app.code, 9)]
    )
    body = client_for(reviewer).get("/my/").content.decode()
    assert app.code in body.split('id="review-table"')[1]
    assert "平台运行状况" not in body


def test_admin_health_panel(media_root):
    admin = make_user(Role.REGISTRY_ADMIN)
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", owner)
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
    now = timezone.now()
    today = timezone.localdate()
    DailyRollup.objects.create(
        meter_id=meter.pk, day=today - timedelta(days=5), energy=10, n_readings=24, covered_s=86400
    )
    batch = IngestBatch.objects.create(
        source="api",
        status="done",
        finished_at=now - timedelta(hours=3),
        rows_total=3,
        rows_accepted=1,
        rows_rejected=2,
    )
    for i, reason in enumerate(["bad_timestamp", "bad_timestamp", "unknown_meter"]):
        QuarantinedRow.objects.create(batch=batch, row_number=i + 2, reason=reason, raw="x")
    panel = services.admin_panel(admin)
    api = next(s for s in panel.sources if s.source == "api")
    assert api.last_finished is not None and timedelta(hours=2) < api.lag < timedelta(hours=4)
    assert (api.accepted_30d, api.rejected_30d) == (1, 2)
    assert panel.quarantine_total == 3
    assert panel.quarantine_by_reason[0] == ("bad_timestamp", 2, 2)
    lag = next(m for m in panel.meters_lagging if m.serial == meter.serial)
    assert lag.days_behind == 5
    assert panel.last_verification is None
    body = client_for(admin).get("/my/").content.decode()
    assert "从未校验" in body and "bad_timestamp" in body


def test_ledger_verify_is_recorded_and_shown(media_root):
    admin = make_user(Role.REGISTRY_ADMIN)
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", owner, kwh="600")
    issue([(system, 3, ledger.account_for_user(owner))], applicant=owner)
    call_command("ledger", "verify")
    run = VerificationRun.objects.get()
    assert run.ok and run.entries >= 1 and run.head_hash
    panel = services.admin_panel(admin, now=run.finished_at + timedelta(hours=5))
    assert panel.last_verification == run and panel.verification_age == timedelta(hours=5)
    body = client_for(admin).get("/my/").content.decode()
    assert "哈希链完好" in body and f"已校验 {run.entries} 条" in body


def test_broken_journal_run_is_recorded(media_root):
    from django.core.management.base import CommandError

    from lowcarbon.registry.models import JournalEntry

    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = system_in("dongqu", owner, kwh="600")
    issue([(system, 3, ledger.account_for_user(owner))], applicant=owner)
    first = JournalEntry.objects.order_by("seq").first()
    JournalEntry.objects.filter(seq=first.seq).update(hash="0" * 64)
    with pytest.raises(CommandError):
        call_command("ledger", "verify")
    run = VerificationRun.objects.get()
    assert not run.ok and run.first_bad_seq == first.seq and run.reason
    admin = make_user(Role.REGISTRY_ADMIN)
    body = client_for(admin).get("/my/").content.decode()
    assert "哈希链已损坏" in body


def test_buyer_without_panels_gets_a_pointer_to_the_public_dashboard():
    buyer = make_user(Role.BUYER)
    body = client_for(buyer).get("/my/").content.decode()
    assert "没有对应的看板面板" in body


def test_bad_month_is_said(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD)
    body = client_for(alice).get("/my/?month=2025-13").content.decode()
    assert "无法识别该月份" in body


def test_panels_read_rollups_not_readings(media_root, django_assert_max_num_queries):
    """The role panels never touch the readings table (they read rollups)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = make_org("aggregator")
    agg = make_user(Role.AGGREGATOR, Role.OWNER_HOUSEHOLD, Role.REVIEWER_CITY, Role.REGISTRY_ADMIN, org=org)
    s = system_in("dongqu", agg, kwh="600")
    consent(s, org)
    with CaptureQueriesContext(connection) as q:
        assert client_for(agg).get("/my/?month=2025-06").status_code == 200
    assert not [x for x in q.captured_queries if "metering_reading" in x["sql"]]
    assert datetime.now(UTC)  # the page rendered under all four roles at once


def test_verifier_sees_the_applications_at_verification(media_root):
    from tests.registry.app_helpers import isolation_application

    owner = make_user(Role.OWNER_HOUSEHOLD)
    app = isolation_application(owner, system_in("dongqu", owner, kwh="600"))
    Application.objects.filter(pk=app.pk).update(state=Application.State.VERIFICATION)
    verifier = make_user(Role.VERIFIER)
    body = client_for(verifier).get("/my/").content.decode()
    assert app.code in body.split('id="review-table"')[1]
