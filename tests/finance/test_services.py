"""Financing services: drafts, publication, assumptions from versioned parameters, calculation with pvlib clear sky,
interest with notification, closing, pipeline, financier sign-up and approval, the estimator."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import get_parameter, set_parameter
from lowcarbon.finance import services as svc
from lowcarbon.finance.models import FinancingProject, Interest
from lowcarbon.registry.models import Notification
from tests.factories import make_system, make_user
from tests.finance.helpers import enterprise_owner, financier, project_data, published

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_draft_from_roof_area_uses_packing_density_and_default_assumptions():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    assert p.state == FinancingProject.State.DRAFT and p.code.startswith("FP-")
    assert p.capacity_kwp == D("1000.00")  # 6,500 m² / 6.5 m² per kWp
    assert p.kind == "enterprise_roof" and p.owner_org is not None
    assert p.assumptions["tariff_cny_per_kwh"] == "0.7"
    assert p.assumptions["self_consumption_percent"] == "70"
    assert p.parameter_versions["finance.capex_per_kwp"] == 1
    assert p.parameter_versions["grid_factor"] == "MEE2019-SOUTH-CM"


def test_household_programme_uses_household_tariff():
    org_user = make_user(
        "aggregator", org=__import__("tests.factories", fromlist=["make_org"]).make_org("aggregator")
    )
    p = svc.do_create_project(org_user, project_data(roof_area_m2="", capacity_kwp="120"))
    assert p.kind == "household_programme"
    assert p.assumptions["tariff_cny_per_kwh"] == "0.59"


def test_calculation_is_clear_sky_times_ratio_and_plausible_for_zhongshan():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    calc = svc.calculate(p)
    # domain.md §4.4: clear sky 1,678–1,818 kWh/kWp for tilts 5–30°; × 0.58 ≈ Zhongshan design 950–1,150 (§4.1)
    assert D(1600) < calc.clear_sky_kwh_per_kwp < D(1900)
    assert calc.specific_yield_kwh_per_kwp == (calc.clear_sky_kwh_per_kwp * D("0.58")).quantize(D("0.1"))
    assert D(950) <= calc.specific_yield_kwh_per_kwp <= D(1150)
    first = calc.result.rows[1]
    assert first.generation_kwh == (D(1000) * calc.specific_yield_kwh_per_kwp).quantize(D("0.01"))
    assert first.er_kg == (first.generation_kwh * D("0.656525")).quantize(
        D("0.001")
    )  # 0.75 × 0.8042 + 0.25 × 0.2135
    assert calc.result.capex == D("3500000.00")
    assert len(calc.result.rows) == 26
    assert calc.result.payback_year is not None and calc.result.irr is not None


def test_overrides_change_only_this_calculation():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    base = svc.calculate(p)
    cheaper = svc.calculate(p, {"capex_cny_per_kwp": "2800", "performance_ratio": "0.6"})
    assert cheaper.result.capex == D("2800000.00")
    assert cheaper.result.irr > base.result.irr
    p.refresh_from_db()
    assert p.assumptions["capex_cny_per_kwp"] == "3500"


def test_bad_override_names_field_and_reason():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    with pytest.raises(svc.FinanceInvalid) as exc:
        svc.calculate(p, {"discount_rate_percent": "150", "capex_cny_per_kwp": "abc"})
    fields = {pr.field for pr in exc.value.problems}
    assert fields == {"discount_rate_percent", "capex_cny_per_kwp"}
    text = " ".join(pr.message for pr in exc.value.problems)
    assert "折现率" in text and "不是数字" in text


def test_new_parameter_version_is_used_for_new_projects_only():
    owner = enterprise_owner()
    old = svc.do_create_project(owner, project_data())
    set_parameter(
        "finance.capex_per_kwp",
        D(3000),
        get_parameter("finance.capex_per_kwp").valid_from.replace(year=2024),
        "quotation 2024",
    )
    new = svc.do_create_project(owner, project_data())
    assert (
        new.assumptions["capex_cny_per_kwp"] == "3000"
        and new.parameter_versions["finance.capex_per_kwp"] == 2
    )
    assert svc.calculate(old).result.capex == D("3500000.00")


def test_owner_saves_assumptions_and_refusal_changes_nothing():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    svc.do_save_assumptions(owner, p, {"tariff_cny_per_kwh": "0.75"})
    p.refresh_from_db()
    assert p.assumptions["tariff_cny_per_kwh"] == "0.75"
    with pytest.raises(svc.FinanceInvalid):
        svc.do_save_assumptions(owner, p, {"tariff_cny_per_kwh": "0.8", "lifetime_years": "2.5"})
    p.refresh_from_db()
    assert p.assumptions["tariff_cny_per_kwh"] == "0.75"
    other = enterprise_owner()
    with pytest.raises(DomainError):
        svc.do_save_assumptions(other, p, {"tariff_cny_per_kwh": "0.1"})


def test_interest_notifies_owner_and_is_one_per_financier():
    owner = enterprise_owner()
    p = published(owner)
    fin = financier()
    i = svc.do_express_interest(
        fin, p, {"message": "可提供贷款", "amount_cny": "3000000", "terms": "5年 3.9%"}
    )
    assert i.financier_org is not None
    note = Notification.objects.get(user=owner)
    assert p.code in note.message and "3,000,000.00" in note.message and note.link.endswith(f"/{p.code}/")
    with pytest.raises(DomainError) as exc:
        svc.do_express_interest(fin, p, {"message": "again", "amount_cny": "1"})
    assert exc.value.code == "already_interested"
    assert Interest.objects.count() == 1


def test_interest_refused_on_draft_closed_and_for_non_financiers():
    owner = enterprise_owner()
    draft = svc.do_create_project(owner, project_data())
    fin = financier()
    with pytest.raises(DomainError) as exc:
        svc.do_express_interest(fin, draft, {"message": "x", "amount_cny": "1"})
    assert exc.value.code == "wrong_state"
    p = published(owner)
    with pytest.raises(DomainError):
        svc.do_express_interest(owner, p, {"message": "x", "amount_cny": "1"})
    with pytest.raises(svc.FinanceInvalid) as bad:
        svc.do_express_interest(fin, p, {"message": "", "amount_cny": "-5"})
    assert {pr.field for pr in bad.value.problems} == {"message", "amount_cny"}
    svc.do_close(owner, p)
    with pytest.raises(DomainError):
        svc.do_express_interest(fin, p, {"message": "x", "amount_cny": "1"})
    assert Interest.objects.count() == 0


def test_visibility_rules():
    owner, other = enterprise_owner(), enterprise_owner()
    fin, fin2 = financier(), financier()
    draft = svc.do_create_project(owner, project_data(name="草稿"))
    pub = published(owner, name="已发布")
    closed = published(owner, name="已关闭")
    svc.do_express_interest(fin, closed, {"message": "x", "amount_cny": "1"})
    svc.do_close(owner, closed)
    assert set(svc.visible_projects(owner)) == {draft, pub, closed}
    assert set(svc.visible_projects(other)) == set()
    assert set(svc.visible_projects(fin)) == {pub, closed}
    assert set(svc.visible_projects(fin2)) == {pub}
    admin = make_user("registry_admin")
    assert set(svc.visible_projects(admin)) == {draft, pub, closed}
    assert list(svc.visible_interests(fin2, closed)) == []


def test_linked_systems_must_be_managed_by_the_owner():
    owner = enterprise_owner()
    mine = make_system(owner)
    stranger = make_system(make_user("owner_household"))
    with pytest.raises(svc.FinanceInvalid) as exc:
        svc.do_create_project(owner, project_data(), [mine.code, stranger.code])
    assert exc.value.problems[0].field == "systems" and stranger.code in exc.value.problems[0].message
    p = svc.do_create_project(owner, project_data(), [mine.code])
    assert list(p.systems.all()) == [mine]


def test_project_validation_names_every_field_and_saves_nothing():
    owner = enterprise_owner()
    with pytest.raises(svc.FinanceInvalid) as exc:
        svc.do_create_project(
            owner,
            project_data(
                name="",
                community="nowhere",
                amount_cny="0",
                financing_type="gift",
                tilt_deg="95",
                roof_area_m2="",
                capacity_kwp="7000",
            ),
        )
    fields = {p.field for p in exc.value.problems}
    assert fields == {"name", "community", "amount_cny", "financing_type", "tilt_deg", "capacity_kwp"}
    assert FinancingProject.objects.count() == 0


def test_household_owner_cannot_publish():
    with pytest.raises(DomainError):
        svc.do_create_project(make_user("owner_household"), project_data())


def test_pipeline_sums_by_stage():
    owner = enterprise_owner()
    p1 = published(owner, amount_cny="1000000")
    published(owner, amount_cny="500000")
    svc.do_create_project(owner, project_data(amount_cny="250000"))
    svc.do_express_interest(financier(), p1, {"message": "x", "amount_cny": "800000"})
    admin = make_user("registry_admin")
    data = svc.pipeline(admin)
    by = {s.state: s for s in data["stages"]}
    assert by["published"].projects == 2 and by["published"].amount_cny == D("1500000")
    assert by["published"].leads == 1 and by["published"].offered_cny == D("800000")
    assert by["draft"].amount_cny == D("250000")
    assert data["totals"]["amount_cny"] == D("1750000")
    with pytest.raises(DomainError):
        svc.pipeline(owner)


def test_financier_sign_up_needs_approval():
    admin = make_user("registry_admin")
    user = svc.do_register_financier(
        {
            "org_name": "小榄银行",
            "username": "bank1",
            "real_name": "李四",
            "phone": "13900000000",
            "password": "Green-Loans-2026",
        }
    )
    assert not user.is_active and user.has_role("financier")
    assert user.organisations.get().kind == "financial"
    assert Notification.objects.filter(user=admin, message__contains="小榄银行").exists()
    assert list(svc.pending_financiers()) == [user]
    svc.do_approve_financier(admin, user.pk)
    user.refresh_from_db()
    assert user.is_active and list(svc.pending_financiers()) == []
    with pytest.raises(svc.FinanceInvalid) as exc:
        svc.do_register_financier(
            {"org_name": "", "username": "bank1", "real_name": "x", "phone": "1", "password": "123"}
        )
    assert {p.field for p in exc.value.problems} == {"org_name", "username", "password"}


def test_estimate_of_a_park_and_draft_from_it():
    inp = svc.parse_estimate(
        [
            {"name": "车间A", "area_m2": "3250", "tilt_deg": "", "azimuth_deg": ""},
            {"name": "", "area_m2": ""},
            {"name": "仓库", "area_m2": "1300", "tilt_deg": "5", "azimuth_deg": "90"},
        ],
        {"community": "dongqu"},
    )
    est = svc.estimate(inp)
    a, b = est.park.roofs
    assert a.capacity_kwp == D("500.00") and b.capacity_kwp == D("200.00")
    assert est.park.capacity_kwp == D("700.00")
    assert est.park.annual_kwh == a.annual_kwh + b.annual_kwh
    assert est.park.annual_t == a.annual_t + b.annual_t
    assert est.park.investment_cny == D(2450000)
    assert a.specific_yield_kwh_per_kwp > b.specific_yield_kwh_per_kwp  # south beats east
    assert FinancingProject.objects.count() == 0
    owner = enterprise_owner()
    p = svc.do_project_from_estimate(owner, est, {"name": "园区屋顶", "financing_type": "emc"})
    assert p.capacity_kwp == D("700.00") and p.roof_area_m2 == D("4550") and p.amount_cny == D("2450000")
    assert "车间A" in p.description


def test_estimate_errors_name_row_and_field():
    with pytest.raises(svc.FinanceInvalid) as exc:
        svc.parse_estimate(
            [{"name": "A", "area_m2": "-10"}, {"name": "B", "area_m2": "100", "tilt_deg": "120"}],
            {"packing_m2_per_kwp": "1"},
        )
    msgs = [p.message for p in exc.value.problems]
    assert any("A" in m and "可用屋顶面积" in m for m in msgs)
    assert any("B" in m and "倾角" in m for m in msgs)
    assert any("铺设密度" in m for m in msgs)
