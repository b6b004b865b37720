"""Quantification arithmetic and month rules, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowcarbon.methodology.domain import quantify as dq
from lowcarbon.methodology.domain.quantify import (
    FactorVersion,
    MethodologyVersion,
    MonthPlan,
    avoided_emissions_kg,
    combined_margin,
    crediting_ef,
    parse_month,
    plan_month,
)

pytestmark = pytest.mark.unit

D = Decimal
SOUTH_CM = combined_margin(D("0.8042"), D("0.2135"), D("0.75"), D("0.25"))

V01 = MethodologyVersion(
    1, date(2017, 6, 23), date(2022, 7, 31), (FactorVersion(10, date(2017, 6, 23), SOUTH_CM),)
)
V2022 = MethodologyVersion(
    2,
    date(2022, 8, 1),
    None,
    (
        FactorVersion(10, date(2022, 8, 1), SOUTH_CM),
        FactorVersion(11, date(2025, 1, 1), D("0.6")),
    ),
)
METHODOLOGIES = (V01, V2022)


def plan(month: date, gen: str = "100", *, connected: date = date(2016, 1, 1), flagged: bool = False):
    return plan_month(
        month, D(gen), D("0"), grid_connection_date=connected, methodologies=METHODOLOGIES, flagged=flagged
    )


def test_combined_margin_of_the_south_grid_is_exact():
    assert D("0.656525") == SOUTH_CM
    assert D("1000") * SOUTH_CM == D("656.525000")  # 1 MWh ≈ 0.66 tCO2e (domain.md §2.4)


def test_combined_margin_refuses_weights_not_summing_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        combined_margin(D("0.8"), D("0.2"), D("0.75"), D("0.3"))


def test_avoided_emissions_rounds_half_up_to_the_gram():
    assert avoided_emissions_kg(D("1234.5678"), SOUTH_CM) == D("810.525")  # 810.5246248950 → 810.525
    assert avoided_emissions_kg(D("0.001"), D("0.5")) == D("0.001")  # 0.0005 rounds up
    with pytest.raises(ValueError):
        avoided_emissions_kg(D("-1"), SOUTH_CM)


def test_crediting_ef_refuses_average_factors_and_unstorable_precision():
    with pytest.raises(dq.FactorUnusable) as exc:
        crediting_ef(False, None, None, None, None)
    assert exc.value.reason == dq.FACTOR_NOT_CREDITABLE
    with pytest.raises(dq.FactorUnusable) as exc:
        crediting_ef(True, D("0.8"), None, D("0.75"), D("0.25"))
    assert exc.value.reason == dq.FACTOR_INVALID
    with pytest.raises(dq.FactorUnusable) as exc:  # 0.1234 × 0.1234 has 8 decimals, more than a result stores
        crediting_ef(True, D("0.1234"), D("0.1"), D("0.1234"), D("0.8766"))
    assert exc.value.reason == dq.FACTOR_INVALID
    assert crediting_ef(True, D("0.8042"), D("0.2135"), D("0.75"), D("0.25")) == D("0.656525")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-01", date(2024, 1, 1)), ("1999-12", date(1999, 12, 1)), (" 2022-08 ", date(2022, 8, 1))],
)
def test_parse_month(text, expected):
    assert parse_month(text) == expected


@pytest.mark.parametrize(
    "text", ["2024-13", "2024-00", "2024-1", "24-01", "2024/01", "2024-01-01", "", "0000-01"]
)
def test_parse_month_refuses_other_forms(text):
    with pytest.raises(ValueError):
        parse_month(text)


def test_month_before_grid_connection_is_excluded_but_the_connection_month_counts():
    assert plan(date(2023, 12, 1), connected=date(2024, 1, 20)) == dq.Exclusion(
        date(2023, 12, 1), dq.BEFORE_GRID_CONNECTION
    )
    assert isinstance(plan(date(2024, 1, 1), connected=date(2024, 1, 20)), MonthPlan)


def test_month_before_any_methodology_is_excluded():
    assert plan(date(2017, 5, 1)).reason == dq.BEFORE_METHODOLOGY


def test_methodology_by_month_and_its_first_partial_month_uses_its_first_factor():
    june = plan(date(2017, 6, 1))  # V01 in force from 2017-06-23, factor assigned from the same day
    assert isinstance(june, MonthPlan) and june.methodology_id == 1 and june.factor_id == 10
    assert plan(date(2022, 7, 1)).methodology_id == 1
    assert plan(date(2022, 8, 1)).methodology_id == 2


def test_factor_is_the_latest_assignment_on_or_before_the_month():
    assert plan(date(2024, 12, 1)).factor_id == 10
    later = plan(date(2025, 1, 1), "1000")
    assert later.factor_id == 11 and later.er_kg == D("600.000")


def test_gap_between_methodologies_and_missing_factor():
    gap = (
        MethodologyVersion(
            1, date(2017, 1, 1), date(2017, 12, 31), (FactorVersion(10, date(2017, 1, 1), SOUTH_CM),)
        ),
    )
    out = plan_month(
        date(2018, 3, 1), D(1), D(0), grid_connection_date=date(2016, 1, 1), methodologies=gap, flagged=False
    )
    assert out.reason == dq.NO_METHODOLOGY
    bare = (MethodologyVersion(1, date(2017, 1, 1), None, ()),)
    out = plan_month(
        date(2018, 3, 1), D(1), D(0), grid_connection_date=date(2016, 1, 1), methodologies=bare, flagged=False
    )
    assert out.reason == dq.NO_FACTOR


def test_unusable_factor_blocks_the_month_with_its_reason():
    avg = (
        MethodologyVersion(
            1, date(2017, 1, 1), None, (FactorVersion(12, date(2017, 1, 1), None, dq.FACTOR_NOT_CREDITABLE),)
        ),
    )
    out = plan_month(
        date(2018, 3, 1), D(1), D(0), grid_connection_date=date(2016, 1, 1), methodologies=avg, flagged=False
    )
    assert out.reason == dq.FACTOR_NOT_CREDITABLE


def test_flagged_and_negative_months_are_excluded():
    assert plan(date(2024, 3, 1), flagged=True).reason == dq.PLAUSIBILITY_FLAG
    assert plan(date(2024, 3, 1), "-0.0001").reason == dq.NEGATIVE_GENERATION


def test_same_inputs_compares_every_input_numerically():
    p = plan(date(2024, 3, 1), "12.5")
    assert p.same_inputs(2, 10, D("0.6565250"), D("12.5000"), D("0"))
    assert not p.same_inputs(2, 10, SOUTH_CM, D("12.5001"), D("0"))
    assert not p.same_inputs(2, 11, SOUTH_CM, D("12.5"), D("0"))
    assert not p.same_inputs(1, 10, SOUTH_CM, D("12.5"), D("0"))
    assert not p.same_inputs(2, 10, SOUTH_CM, D("12.5"), D("1"))


def test_summary_counts_exclusions_by_reason_and_converts_to_tonnes():
    s = dq.QuantifySummary(total_er_kg=D("1234.567"))
    s.exclude("PV-1", date(2024, 1, 1), dq.PLAUSIBILITY_FLAG)
    s.exclude("PV-2", date(2024, 2, 1), dq.PLAUSIBILITY_FLAG)
    s.exclude("PV-2", date(2023, 2, 1), dq.BEFORE_GRID_CONNECTION)
    assert s.months_excluded == {dq.PLAUSIBILITY_FLAG: 2, dq.BEFORE_GRID_CONNECTION: 1}
    assert s.months_excluded_total == 3
    assert s.total_er_t == D("1.234567")


kwh = st.decimals(min_value=D("0"), max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False)
ef = st.decimals(min_value=D("0"), max_value=D("1.5"), places=6, allow_nan=False, allow_infinity=False)


@given(months=st.lists(kwh, min_size=1, max_size=24), factor=ef)
def test_er_is_additive_across_months_within_rounding(months, factor):
    """Σ per-month ER equals the ER of the summed generation, up to half a gram per month of rounding."""
    per_month = sum((avoided_emissions_kg(g, factor) for g in months), D(0))
    whole = avoided_emissions_kg(sum(months, D(0)), factor)
    assert abs(per_month - whole) <= D("0.0005") * len(months) + D("0.0005")


@given(gen=kwh, factor=ef, k=st.integers(min_value=1, max_value=50))
def test_er_is_linear_in_generation_within_rounding(gen, factor, k):
    assert abs(avoided_emissions_kg(gen * k, factor) - k * avoided_emissions_kg(gen, factor)) <= D(
        "0.0005"
    ) * (k + 1)


@given(
    month=st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31)),
    connected=st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31)),
    gen=kwh,
)
def test_no_month_before_grid_connection_or_methodology_is_ever_credited(month, connected, gen):
    out = plan_month(
        month, gen, D(0), grid_connection_date=connected, methodologies=METHODOLOGIES, flagged=False
    )
    if isinstance(out, MonthPlan):
        assert out.month >= connected.replace(day=1)
        assert out.month >= date(2017, 6, 1)
        assert out.er_kg == avoided_emissions_kg(gen, out.ef_cm)
