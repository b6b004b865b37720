"""The claim arithmetic of an application (domain/bundle.py): one floor for the whole bundle, units apportioned by
the largest remainder of each household's own tonnes, leftovers carried forward, conservation to the gram."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowcarbon.registry.domain.bundle import (
    MemberInput,
    compute_claim,
    explanation,
    floor_units,
    largest_remainder,
)

pytestmark = pytest.mark.unit

D = Decimal

#: ten households of a Xiaolan bundle (kg CO2e over one year): 51.1111 t together, as the 2018 bundle's 51 t
TEN = [
    ("H01", "5123.400"),
    ("H02", "4987.900"),
    ("H03", "6012.500"),
    ("H04", "3999.900"),
    ("H05", "5555.500"),
    ("H06", "4321.000"),
    ("H07", "7654.300"),
    ("H08", "2345.600"),
    ("H09", "5432.100"),
    ("H10", "5678.900"),
]


def test_ten_households_floor_once_and_apportion_by_largest_remainder():
    claim = compute_claim([MemberInput(k, D(v)) for k, v in TEN])

    assert claim.kg == D("51111.100")
    assert claim.units == 51  # floored once for the bundle
    assert claim.floor_sum_units == 46  # what flooring each household would give: 5 t lost
    assert claim.pooled_units == 5
    assert claim.carry_out_kg == D("111.100")
    units = {m.key: m.units for m in claim.members}
    # the five largest fractions of a tonne (H04 .9999, H02 .9879, H10 .6789, H07 .6543, H05 .5555) get +1
    assert units == {
        "H01": 5,
        "H02": 5,
        "H03": 6,
        "H04": 4,
        "H05": 6,
        "H06": 4,
        "H07": 8,
        "H08": 2,
        "H09": 5,
        "H10": 6,
    }
    h04 = claim.member("H04")
    assert (h04.floor_units, h04.remainder_t, h04.rank, h04.adjustment) == (3, D("0.9999"), 1, 1)
    assert h04.carry_out_kg == D("-0.100")  # the pooled unit was completed by others' fractions
    h03 = claim.member("H03")
    assert (h03.rank, h03.adjustment, h03.carry_out_kg) == (10, 0, D("12.500"))
    assert sum(m.units for m in claim.members) == 51
    assert sum(m.carry_out_kg for m in claim.members) == claim.carry_out_kg


def test_carry_in_counts_and_is_shown_in_the_explanation():
    claim = compute_claim([MemberInput("A", D("1800.5"), D("250.25")), MemberInput("B", D("900"), D("0"))])
    a = claim.member("A")
    assert a.kg == D("2050.75") and a.floor_units == 2
    assert claim.units == 2  # 2950.75 kg
    e = explanation(claim, "A")
    assert e["carry_in_kg"] == "250.25" and e["units"] == 2 and e["bundle_units"] == 2
    assert D(e["kg"]) == D(e["er_kg"]) + D(e["carry_in_kg"])
    assert D(e["carry_out_kg"]) == D(e["kg"]) - 1000 * e["units"]


def test_single_system_is_just_floored():
    claim = compute_claim([MemberInput("PV-1", D("3999.999"))])
    assert claim.units == 3 and claim.carry_out_kg == D("999.999")
    assert claim.member("PV-1").adjustment == 0


def test_debt_carried_in_gets_no_unit_and_is_carried_on():
    claim = compute_claim([MemberInput("A", D("5000")), MemberInput("B", D("200"), D("-900"))])
    assert claim.units == 4
    b = claim.member("B")
    assert b.units == 0 and b.carry_out_kg == D("-700")
    assert sum(m.units for m in claim.members) == 4
    assert 1000 * 4 + sum(m.carry_out_kg for m in claim.members) == claim.kg


def test_largest_remainder_textbook_and_ties():
    assert largest_remainder([D("1.5"), D("1.5"), D("0")], 3) == [2, 1, 0]  # tie: first position
    assert largest_remainder([D("2.9"), D("0.05"), D("0.05")], 3) == [3, 0, 0]
    with pytest.raises(ValueError):
        largest_remainder([D("-1")], 0)
    assert floor_units(D("-5")) == 0 and floor_units(D("999.999")) == 0 and floor_units(D("1000")) == 1


def test_keys_must_be_unique():
    with pytest.raises(ValueError):
        compute_claim([MemberInput("A", D(1)), MemberInput("A", D(2))])


kg_values = st.decimals(min_value=D(0), max_value=D("50000"), places=3, allow_nan=False, allow_infinity=False)
carry_values = st.decimals(
    min_value=D(0), max_value=D("999.999"), places=3, allow_nan=False, allow_infinity=False
)
members_strategy = st.lists(st.tuples(kg_values, carry_values), min_size=1, max_size=40)


def _members(values: list[tuple[Decimal, Decimal]]) -> list[MemberInput]:
    return [MemberInput(f"PV-{i:04d}", er, cin) for i, (er, cin) in enumerate(values)]


@settings(max_examples=300, deadline=None)
@given(members_strategy)
def test_conservation_to_the_gram(values):
    claim = compute_claim(_members(values))
    total = sum((er + cin for er, cin in values), D(0))
    assert claim.kg == total
    assert sum(m.units for m in claim.members) == claim.units
    assert D(1000) * sum(m.units for m in claim.members) + sum(m.carry_out_kg for m in claim.members) == total
    for m in claim.members:
        assert D(1000) * m.units + m.carry_out_kg == m.kg
    assert D(0) <= claim.carry_out_kg < D(1000)


@settings(max_examples=300, deadline=None)
@given(members_strategy)
def test_bundle_floor_is_at_least_the_sum_of_household_floors(values):
    claim = compute_claim(_members(values))
    per_household = sum(floor_units(er + cin) for er, cin in values)
    assert claim.units >= per_household
    assert claim.units == floor_units(sum((er + cin for er, cin in values), D(0)))
    assert claim.pooled_units == claim.units - per_household
    assert claim.pooled_units < len(values)


@settings(max_examples=300, deadline=None)
@given(members_strategy)
def test_each_member_within_one_unit_of_its_exact_share(values):
    claim = compute_claim(_members(values))
    for m in claim.members:
        assert abs(D(m.units) - m.kg / 1000) < 1
        assert D(-1000) < m.carry_out_kg < D(1000)
        assert m.units in (m.floor_units, m.floor_units + 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            kg_values,
            st.decimals(min_value=D("-999.999"), max_value=D("999.999"), places=3, allow_nan=False),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_conservation_with_debts_carried_in(values):
    claim = compute_claim(_members(values))
    assert all(m.units >= 0 for m in claim.members)
    assert sum(m.units for m in claim.members) == claim.units
    assert D(1000) * claim.units + sum(m.carry_out_kg for m in claim.members) == claim.kg
