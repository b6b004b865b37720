"""Creating applications: who may claim which systems, every refusal naming the system, the period and the reason,
each kWh claimed once (by the code and by the database), the bundle arithmetic on ten households, crediting, carry
forward, the commitment, the verification report and the checklist."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import translation

from lowcarbon.accounts.models import Role
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.methodology.models import Quantification
from lowcarbon.pv.models import Evidence, PlausibilityFlag, ProgrammeClaim
from lowcarbon.registry import applications as svc
from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    ClaimedMonth,
    JournalEntry,
    Notification,
    SystemCarry,
    Transition,
)
from tests.factories import make_org, make_user
from tests.registry.app_helpers import (
    TINY_PDF,
    YEAR,
    add_generation,
    approve,
    bundle_world,
    pdf_font_families,
    quantified_system,
    ready_application,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

D = Decimal


@pytest.fixture(autouse=True)
def _media(media_root):
    return media_root


@pytest.fixture
def owner():
    return make_user(Role.OWNER_HOUSEHOLD, real_name="麦润标")


def create(actor, codes, first=f"{YEAR}-01", last=f"{YEAR}-12", kind="single", **kw):
    return svc.do_create_application(
        actor, system_codes=codes, first_month=first, last_month=last, kind=kind, **kw
    )


def refusal(actor, codes, first=f"{YEAR}-01", last=f"{YEAR}-12", kind="single", **kw) -> DomainError:
    before = (Application.objects.count(), ClaimedMonth.objects.count(), JournalEntry.objects.count())
    with translation.override("en"), pytest.raises(DomainError) as exc:
        create(actor, codes, first, last, kind, **kw)
    assert (Application.objects.count(), ClaimedMonth.objects.count(), JournalEntry.objects.count()) == before
    return exc.value


# --- a single owner ----------------------------------------------------------------------------------------------


def test_owner_claims_a_year_of_own_system(owner):
    system = quantified_system(owner, kwh="600")
    app = create(owner, [system.code])
    qs = Quantification.objects.filter(system_id=system.pk, superseded_at__isnull=True, month__year=YEAR)
    er = sum(q.er_kg for q in qs)
    assert er == 12 * (D(600) * D("0.656525")).quantize(D("0.001"))
    assert (app.kind, app.state, app.vintage, app.claimed_kg, app.units) == ("single", "draft", YEAR, er, 4)
    assert app.carry_out_kg == er - 4000 and app.period_start == date(YEAR, 1, 1)
    assert app.methodology.code == "GD-PV-2022" and app.factor.code == "MEE2019-SOUTH-CM"
    member = app.members.get()
    assert member.credit_account.owner_user == owner
    assert len(member.computation["months"]) == 12
    assert ClaimedMonth.objects.filter(application=app, live=True).count() == 12
    assert Transition.objects.get(application=app).to_state == "draft"
    assert JournalEntry.objects.filter(kind="app_created").count() == 1
    assert Notification.objects.filter(user=owner, message__contains=app.code).count() == 1


def test_enterprise_claims_for_its_organisation():
    org = make_org("enterprise")
    person = make_user(Role.OWNER_ENTERPRISE, org=org)
    system = quantified_system(None, org, kwh="40000", capacity_kwp="300")
    app = create(person, [system.code])
    assert app.applicant_org == org and app.members.get().credit_account.owner_org == org
    colleague = make_user(Role.OWNER_ENTERPRISE, org=org)
    assert svc.is_applicant_side(colleague, app)


def test_owner_may_not_claim_someone_elses_system(owner):
    other = quantified_system(make_user(Role.OWNER_HOUSEHOLD))
    err = refusal(owner, [other.code])
    assert err.code == "unknown_system" and other.code in err.message


def test_only_aggregators_file_bundles(owner):
    system = quantified_system(owner)
    assert refusal(owner, [system.code], kind="bundle").code == "not_aggregator"


def test_aggregator_may_not_file_a_household_system_as_single():
    w = bundle_world(1)
    assert refusal(w.aggregator, w.codes, kind="single").code == "not_owner"


# --- refusals name the system, the period and the reason ---------------------------------------------------------


def test_months_before_grid_connection(owner):
    system = quantified_system(owner, grid_connection_date=date(YEAR, 4, 15), months=range(4, 13))
    err = refusal(owner, [system.code])
    assert err.code == "before_grid_connection"
    assert err.message.startswith(f"{system.code}, {YEAR}-01 to {YEAR}-03: before the grid connection")
    assert f"{YEAR}-04" in err.message
    assert create(owner, [system.code], first=f"{YEAR}-04").units >= 1


def test_months_before_the_methodology(owner):
    system = quantified_system(
        owner, grid_connection_date=date(2017, 1, 1), months=range(1, 13), year=2017, kwh="900"
    )
    err = refusal(owner, [system.code], first="2017-01", last="2017-12")
    assert [(r.first, r.last, r.code) for r in err.refusals] == [
        (date(2017, 1, 1), date(2017, 5, 1), "before_methodology")
    ]
    assert f"{system.code}, 2017-01 to 2017-05: before the methodology took effect" in err.message


def test_months_claimed_in_another_programme(owner):
    system = quantified_system(owner)
    ProgrammeClaim.objects.create(
        system=system,
        programme="gec",
        period_start=date(YEAR, 3, 10),
        period_end=date(YEAR, 4, 30),
        reference="GEC-88",
    )
    err = refusal(owner, [system.code])
    assert err.code == "other_programme"
    assert f"{system.code}, {YEAR}-03 to {YEAR}-04: already claimed in another programme" in err.message
    assert "GEC-88" in err.message and "Green electricity certificates" in err.message
    assert create(owner, [system.code], first=f"{YEAR}-05").units >= 1


def test_months_with_open_reject_flags_and_unquantified_months(owner):
    system = quantified_system(owner, months=[1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12])
    PlausibilityFlag.objects.create(
        system=system,
        month=date(YEAR, 2, 1),
        code="monthly_yield_reject",
        severity="reject",
        value=400,
        limit=300,
    )
    err = refusal(owner, [system.code])
    codes = {(r.first.month, r.code) for r in err.refusals}
    assert codes == {(2, "plausibility_flag"), (7, "not_quantified")}
    assert f"{system.code}, {YEAR}-02: an open reject-level plausibility flag" in err.message
    assert f"{system.code}, {YEAR}-07: no current quantification result" in err.message


def test_period_rules(owner):
    system = quantified_system(owner)
    assert (
        refusal(owner, [system.code], first=f"{YEAR}-11", last=f"{YEAR + 1}-02").code == "period_spans_years"
    )
    assert refusal(owner, [system.code], first=f"{YEAR}-06", last=f"{YEAR}-05").code == "month_range_reversed"
    assert refusal(owner, [system.code], first="2025-13").code == "invalid_month"
    assert refusal(owner, [system.code], first="2099-01", last="2099-02").code == "month_not_over"
    assert refusal(owner, [], kind="single").code == "no_systems"
    err = refusal(owner, [system.code], first=f"{YEAR}-01", last=f"{YEAR}-01")
    assert err.code == "below_one_tonne" and f"{YEAR}-01" in err.message


def test_every_refusal_of_a_bundle_is_listed():
    w = bundle_world(4)
    stranger = quantified_system(make_user(Role.OWNER_HOUSEHOLD))  # no consent for the aggregator
    err = refusal(w.aggregator, [*w.codes, stranger.code], kind="bundle")
    assert err.code == "unknown_system" and stranger.code in err.message
    ProgrammeClaim.objects.create(
        system=w.systems[1], programme="ccer", period_start=date(YEAR, 1, 1), period_end=date(YEAR, 1, 31)
    )
    PlausibilityFlag.objects.create(
        system=w.systems[3],
        month=date(YEAR, 7, 1),
        code="above_clear_sky",
        severity="reject",
        value=900,
        limit=700,
    )
    err = refusal(w.aggregator, w.codes, kind="bundle")
    named = [(r.system, r.first, r.code) for r in err.refusals]
    assert (w.codes[1], date(YEAR, 1, 1), "other_programme") in named
    assert (w.codes[3], date(YEAR, 7, 1), "plausibility_flag") in named
    assert w.codes[1] in err.message and w.codes[3] in err.message


# --- each kWh once ----------------------------------------------------------------------------------------------


def test_a_month_belongs_to_one_live_application(owner):
    system = quantified_system(owner)
    first = create(owner, [system.code], first=f"{YEAR}-01", last=f"{YEAR}-06")
    err = refusal(owner, [system.code], first=f"{YEAR}-05", last=f"{YEAR}-12")
    assert err.code == "already_claimed"
    assert (
        f"{system.code}, {YEAR}-05 to {YEAR}-06: already claimed by application {first.code}" in err.message
    )


def test_a_system_waits_for_its_pending_application(owner):
    system = quantified_system(owner)
    first = create(owner, [system.code], first=f"{YEAR}-01", last=f"{YEAR}-06")
    err = refusal(owner, [system.code], first=f"{YEAR}-07", last=f"{YEAR}-12")
    assert err.code == "pending_application" and first.code in err.message and system.code in err.message


def test_the_database_refuses_a_second_live_claim(owner):
    system = quantified_system(owner)
    app = create(owner, [system.code])
    cm = ClaimedMonth.objects.filter(application=app).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ClaimedMonth.objects.create(
            system=system, month=cm.month, application=app, quantification=cm.quantification
        )
    # a released claim does not count
    ClaimedMonth.objects.filter(pk=cm.pk).update(live=False)
    ClaimedMonth.objects.create(
        system=system, month=cm.month, application=app, quantification=cm.quantification
    )


def test_the_service_turns_the_database_refusal_into_a_named_refusal(owner, monkeypatch):
    """A claim that slips past the checks (as two concurrent requests would) is stopped by the constraint."""
    system = quantified_system(owner)
    first = create(owner, [system.code], first=f"{YEAR}-01", last=f"{YEAR}-06")
    monkeypatch.setattr(svc, "_live_claims", lambda ids, exclude_application=None: {})
    monkeypatch.setattr(svc, "_pending_applications", lambda ids: {})
    err = refusal(owner, [system.code], first=f"{YEAR}-06", last=f"{YEAR}-12")
    assert err.code == "already_claimed"
    assert err.refusals[0].system == system.code and err.refusals[0].first == date(YEAR, 6, 1)
    assert f"{system.code}, {YEAR}-06: already claimed by application {first.code}" in err.message


# --- the bundle ---------------------------------------------------------------------------------------------------


def test_ten_household_bundle_arithmetic_and_crediting():
    w = bundle_world(10, credit_to_aggregator_for=(2,))
    app = create(w.aggregator, w.codes, kind="bundle")
    members = {m.system.code: m for m in app.members.select_related("system", "credit_account")}
    assert app.kind == "bundle" and app.applicant_org == w.agg_org
    assert app.claimed_kg == D("51114.408") and app.units == 51 and app.carry_out_kg == D("114.408")
    own_floors = sum(int(m.er_kg // 1000) for m in members.values())
    assert own_floors == 47  # flooring per household would lose 4 t
    units = [members[c].units for c in w.codes]
    assert units == [5, 5, 6, 4, 6, 4, 8, 2, 5, 6]
    assert sum(units) == 51
    assert sum(m.carry_out_kg for m in members.values()) == app.carry_out_kg
    for m in members.values():
        assert m.carry_out_kg == m.er_kg + m.carry_in_kg - 1000 * m.units
        assert abs(m.units - (m.er_kg + m.carry_in_kg) / 1000) < 1
        comp = m.computation
        assert comp["units"] == m.units and comp["bundle_units"] == 51 and comp["members"] == 10
    # household 3 consented to crediting the aggregator; the others are credited themselves
    assert members[w.codes[2]].credit_account.owner_org == w.agg_org
    assert members[w.codes[0]].credit_account.owner_user == w.households[0]
    # each household is told its share
    note = Notification.objects.get(user=w.households[0])
    assert app.code in note.message and w.codes[0] in note.message
    with translation.override("en"):
        lines = svc.share_lines(members[w.codes[3]].computation)
    assert any("ranks 10 of 10" in line for line in lines)  # household 4: 4,002.180 kg, the smallest fraction
    with translation.override("en"):
        lines = svc.share_lines(members[w.codes[1]].computation)
    assert any("ranks 1 of 10" in line for line in lines) and any("-13.040 kg" in line for line in lines)


def test_carry_forward_reaches_the_next_application():
    w = bundle_world(2)
    app = ready_application(w.aggregator, w.codes, first_month=f"{YEAR}-01", last_month=f"{YEAR}-06")
    approve(app, w.aggregator, w.reviewer)
    svc.do_issue(app, w.admin)
    carry = {s.pk: SystemCarry.objects.get(system=s).kg for s in w.systems}
    expected = {m.system_id: m.carry_out_kg for m in app.members.all()}
    assert carry == expected
    nxt = create(w.aggregator, w.codes, first=f"{YEAR}-07", last=f"{YEAR}-12", kind="bundle")
    for m in nxt.members.all():
        assert m.carry_in_kg == carry[m.system_id]
    assert nxt.carry_in_kg == sum(carry.values())


def test_revoked_consent_and_non_household_systems_refused():
    w = bundle_world(2)
    from django.utils import timezone

    w.systems[0].consents.update(revoked_at=timezone.now())
    err = refusal(w.aggregator, w.codes, kind="bundle")
    assert err.code == "unknown_system" and w.codes[0] in err.message


# --- commitment, report, checklist -------------------------------------------------------------------------------


def test_commitment_and_reports(owner):
    system = quantified_system(owner)
    app = create(owner, [system.code])
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    with pytest.raises(DomainError):
        svc.do_sign_commitment(app, stranger)
    app = svc.do_sign_commitment(app, owner)
    assert app.commitment_signed_at and app.code in app.commitment_text
    with pytest.raises(DomainError) as exc:
        svc.do_attach_report(app, owner, SimpleUploadedFile("r.pdf", b"not a pdf"))
    assert exc.value.code == "report_type"
    with pytest.raises(DomainError):
        svc.do_attach_report(app, owner, SimpleUploadedFile("r.docx", TINY_PDF))
    app = svc.do_attach_report(app, owner, SimpleUploadedFile("r.pdf", TINY_PDF))
    assert app.report and not app.report_generated
    assert set(JournalEntry.objects.values_list("kind", flat=True)) >= {"app_commitment", "app_report"}


def test_generated_report_is_a_chinese_pdf_with_the_arithmetic():
    w = bundle_world(3)
    app = create(w.aggregator, w.codes, kind="bundle")
    html = svc.report_html(app)
    assert 'lang="zh-hans"' in html and "Noto Sans CJK SC" in html
    for code in w.codes:
        assert code in html
    assert "MEE2019-SOUTH-CM" in html and "0.656525" in html and "住*" in html  # owners masked
    app = svc.do_generate_report(app, w.aggregator)
    data = app.report.open("rb").read()
    assert data.startswith(b"%PDF-") and app.report_generated
    assert "Noto Sans CJK SC" in pdf_font_families(data)  # the CJK font is embedded


def test_checklist_from_the_owners_data(owner):
    system = quantified_system(owner, months=range(1, 12))
    ProgrammeClaim.objects.create(
        system=system, programme="ccer", period_start=date(YEAR, 1, 1), period_end=date(YEAR, 1, 31)
    )
    with translation.override("en"):
        cl = svc.checklist(owner, system, f"{YEAR}-01", f"{YEAR}-12")
    status = {r.code: r.status for r in cl.rows}
    assert status == {
        "applicant_may_claim": "pass",
        "grid_connected": "pass",
        "in_zhongshan": "pass",
        "capacity_within_limit": "pass",
        "metering_evidence": "missing",
        "no_other_programme": "fail",
        "after_grid_connection": "pass",
        "after_methodology": "pass",
        "plausibility_cleared": "pass",
        "quantified": "missing",
        "not_claimed": "pass",
    }
    detail = {r.code: r.detail for r in cl.rows}
    assert f"{YEAR}-12" in detail["quantified"] and "CCER" in detail["no_other_programme"]
    assert not cl.ready and cl.claimable == [date(YEAR, m, 1) for m in range(2, 12)]
    Evidence.objects.create(system=system, kind="meter_photo", file="evidence/x.jpg", original_name="x.jpg")
    cl = svc.checklist(owner, system, f"{YEAR}-02", f"{YEAR}-11")
    assert cl.ready and all(r.status == "pass" for r in cl.rows)
    # an aggregator without consent sees "may not claim"; a stranger may not see the system at all
    agg = make_user(Role.AGGREGATOR, org=make_org("aggregator"))
    with pytest.raises(DomainError):
        svc.checklist(agg, system)


def test_recomputed_months_are_pointed_out(owner):
    system = quantified_system(owner, months=range(1, 7))
    app = create(owner, [system.code], first=f"{YEAR}-01", last=f"{YEAR}-06")
    add_generation(system, [3], "999")  # a correction recomputes March
    assert svc.superseded_months(app) == [(system.code, date(YEAR, 3, 1))]
    # the claim keeps the results it was made with
    assert ApplicationSystem.objects.get(application=app).er_kg == app.claimed_kg


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_applications_claim_each_month_once():
    """Six aggregators' requests for the same households at the same moment: one wins, the others are refused by
    name, and each (system, month) is claimed once."""
    import threading

    from django.db import connection

    w = bundle_world(3)
    results: list[object] = []

    def work() -> None:
        try:
            results.append(create(w.aggregator, w.codes, kind="bundle"))
        except DomainError as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    created = [r for r in results if isinstance(r, Application)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(created) == 1 and len(refused) == 5
    assert {r.code for r in refused} <= {"already_claimed", "pending_application"}
    assert all(w.codes[0] in r.message for r in refused)
    assert ClaimedMonth.objects.filter(live=True).count() == 36
    assert Application.objects.count() == 1
