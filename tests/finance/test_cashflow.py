"""Cash-flow arithmetic of lowcarbon.finance.domain.cashflow against a case computed by hand, and its invariants."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowcarbon.finance.domain import cashflow as cf
from lowcarbon.finance.domain import rooftop as rt

pytestmark = pytest.mark.unit

CASE = cf.Assumptions(
    capacity_kwp=D(100),
    specific_yield_kwh_per_kwp=D(1000),
    self_consumption_share=D("0.5"),
    tariff_cny_per_kwh=D("0.8"),
    feed_in_cny_per_kwh=D("0.4"),
    grid_factor_kg_per_kwh=D("0.5"),
    unit_price_cny_per_t=D(20),
    capex_cny_per_kwp=D(2000),
    om_cny_per_kwp_year=D(50),
    degradation_per_year=D("0.01"),
    lifetime_years=5,
    discount_rate=D("0.05"),
)


def test_hand_computed_case():
    """100 kWp, 1,000 kWh/kWp, 1 %/yr degradation, half self-consumed at 0.8 CNY/kWh, half exported at 0.4,
    EF 0.5 kg/kWh, units at 20 CNY/t (whole tonnes, remainder carried), capex 2,000 CNY/kWp, O&M 50 CNY/kWp·a,
    5 years, discount 5 %.

    Year 0: capex = 100 × 2,000 = 200,000 → flow −200,000.
    Generation g_y = 100,000 × 0.99^(y−1): 100,000.00 · 99,000.00 · 98,010.00 · 97,029.90 · 96,059.60 (0.01 kWh).
    Energy revenue = g × (0.5 × 0.8 + 0.5 × 0.4) = 0.6 g: 60,000.00 · 59,400.00 · 58,806.00 · 58,217.94 · 57,635.76.
    ER kg = 0.5 g: 50,000 · 49,500 · 49,005 · 48,514.95 · 48,029.80.
    Units with carry: y1 50 000 → 50 t, carry 0; y2 49 500 → 49 t, carry 500; y3 49 005 + 500 = 49 505 → 49 t,
    carry 505; y4 48 514.95 + 505 = 49 019.95 → 49 t, carry 19.95; y5 48 029.80 + 19.95 = 48 049.75 → 48 t,
    carry 49.75. Unit revenue ×20: 1,000 · 980 · 980 · 980 · 960.
    O&M = 100 × 50 = 5,000 each year.
    Net: y1 60,000 + 1,000 − 5,000 = 56,000.00; y2 59,400 + 980 − 5,000 = 55,380.00; y3 58,806 + 980 − 5,000 =
    54,786.00; y4 58,217.94 + 980 − 5,000 = 54,197.94; y5 57,635.76 + 960 − 5,000 = 53,595.76.
    Cumulative: −200,000 → −144,000 → −88,620 → −33,834 → +20,363.94 → +73,959.70: paid back in year 4,
    after 3 + 33,834 / 54,197.94 = 3.624… ≈ 3.62 years.
    NPV at 5 %: 56,000/1.05 + 55,380/1.1025 + 54,786/1.157625 + 54,197.94/1.21550625 + 53,595.76/1.2762815625
    = 53,333.33 + 50,231.29 + 47,326.21 + 44,588.78 + 41,993.68 = 237,473.29 → NPV = 37,473.29.
    IRR: NPV(11 %) = +2,965.49 > 0 and NPV(12 %) = −2,000.37 < 0; linear interpolation
    11 % + 2,965.49 / 4,965.86 % ≈ 11.597 %; bisection gives 11.592 %, asserted as 11.59 % ± 0.0001.
    """
    r = cf.compute(CASE)
    assert r.capex == D("200000.00")
    nets = [row.net for row in r.rows]
    assert nets == [
        D("-200000.00"),
        D("56000.00"),
        D("55380.00"),
        D("54786.00"),
        D("54197.94"),
        D("53595.76"),
    ]
    assert [row.units for row in r.rows[1:]] == [50, 49, 49, 49, 48]
    assert r.rows[-1].carry_kg == D("49.750")
    assert [row.cumulative for row in r.rows][-2:] == [D("20363.94"), D("73959.70")]
    assert r.rows[4].generation_kwh == D("97029.90")
    assert r.payback_year == 4
    assert r.payback_years == D("3.62")
    assert r.npv == D("37473.29")
    assert r.irr is not None and abs(r.irr - D("0.1159")) <= D("0.0001")
    # the interpolation bracket of the docstring
    flows = [row.net for row in r.rows]
    assert cf.npv(D("0.11"), flows) > 0 > cf.npv(D("0.12"), flows)
    assert r.total_units == 245


def test_never_paid_back_has_no_payback_and_no_irr():
    r = cf.compute(replace(CASE, capex_cny_per_kwp=D(20000)))
    assert r.payback_year is None and r.payback_years is None
    assert r.irr is None or r.irr < 0
    assert r.npv < 0


def test_units_are_whole_tonnes_with_carried_remainder():
    r = cf.compute(replace(CASE, capacity_kwp=D("1.5"), lifetime_years=3, degradation_per_year=D(0)))
    # 750 kg a year: 0 t, then 1 t (1,500 kg pooled), then 1 t (1,250 kg pooled)
    assert [row.units for row in r.rows[1:]] == [0, 1, 1]
    assert r.rows[-1].carry_kg == D("250.000")


def test_out_of_range_assumptions_are_named():
    bad = replace(CASE, self_consumption_share=D("1.2"), discount_rate=D(1), capacity_kwp=D(0))
    fields = {p.field for p in cf.check_assumptions(bad)}
    assert fields == {"self_consumption_share", "discount_rate", "capacity_kwp"}
    with pytest.raises(ValueError):
        cf.compute(bad)


@settings(max_examples=40, deadline=None)
@given(
    capex=st.integers(min_value=500, max_value=8000),
    share=st.integers(min_value=0, max_value=100),
    rate=st.integers(min_value=0, max_value=15),
)
def test_irr_is_the_rate_where_npv_vanishes(capex, share, rate):
    a = replace(
        CASE,
        capex_cny_per_kwp=D(capex),
        self_consumption_share=D(share) / 100,
        discount_rate=D(rate) / 100,
        lifetime_years=20,
    )
    r = cf.compute(a)
    flows = [row.net for row in r.rows]
    if r.irr is not None:
        assert abs(cf.npv(r.irr, flows)) < D(5)  # CNY, on a 100 kWp project
        # NPV at the discount rate is positive exactly when the IRR is above it
        if abs(r.irr - a.discount_rate) > D("0.001"):
            assert (r.npv > 0) == (r.irr > a.discount_rate)
    # the cumulative position is the running sum of the flows
    assert r.rows[-1].cumulative == sum(flows, D(0))


def test_rooftop_estimate_sums_buildings():
    roofs = [rt.Roof("A", D(650), D(10), D(180)), rt.Roof("B", D(1300), D(5), D(90))]
    est = rt.estimate(
        roofs, D("6.5"), lambda tilt, az: D(1000) if az == 180 else D(900), D("0.6565"), D(3500)
    )
    a, b = est.roofs
    assert a.capacity_kwp == D("100.00") and b.capacity_kwp == D("200.00")
    assert a.annual_kwh == D(100000) and b.annual_kwh == D(180000)
    assert a.annual_t == D("65.65") and b.annual_t == D("118.17")
    assert est.capacity_kwp == D(300) and est.annual_kwh == D(280000)
    assert est.investment_cny == D(1050000)


def test_rooftop_refuses_bad_rows():
    problems = rt.check_roofs([rt.Roof("A", D(0), D(95), D(180))], D(1))
    assert {(p.row, p.field) for p in problems} == {
        (None, "packing_m2_per_kwp"),
        (0, "area_m2"),
        (0, "tilt_deg"),
    }
