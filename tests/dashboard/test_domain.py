"""Pure arithmetic of the dashboards: k-anonymous areas and categories, completeness, month helpers, market months."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowcarbon.dashboard.domain import anonymity as an
from lowcarbon.dashboard.domain import metrics as mt

pytestmark = pytest.mark.unit


def site(key: str, lat: str, lon: str, n: int, cap: str = "5") -> an.Site:
    return an.Site(key, Decimal(lat), Decimal(lon), n, Decimal(cap))


def test_small_community_is_merged_with_its_nearest_neighbour():
    sites = [
        site("a", "22.670", "113.250", 7),
        site("b", "22.671", "113.251", 2, "9.5"),  # next to a
        site("c", "22.700", "113.300", 6),
    ]
    areas = an.k_anonymous_areas(sites, k=5)
    assert [(a.keys, a.count) for a in areas] == [(("a", "b"), 9), (("c",), 6)]
    merged = areas[0]
    assert merged.capacity_kwp == Decimal("14.5")
    # placed at the count-weighted centre of the two community centres, rounded to 0.001°
    assert merged.latitude == Decimal("22.670") and merged.longitude == Decimal("113.250")


def test_nothing_is_published_below_k_in_the_whole_town():
    assert an.k_anonymous_areas([site("a", "22.6", "113.2", 2), site("b", "22.7", "113.3", 2)], k=5) == []


def test_single_household_never_alone():
    sites = [site(f"c{i}", f"22.6{i}", "113.25", 1) for i in range(9)]
    areas = an.k_anonymous_areas(sites, k=5)
    assert all(a.count >= 5 for a in areas)
    assert sum(a.count for a in areas) == 9


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        an.k_anonymous_areas([], k=0)


sites_st = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),
        st.decimals(min_value=Decimal("22.60"), max_value=Decimal("22.75"), places=3),
        st.decimals(min_value=Decimal("113.20"), max_value=Decimal("113.30"), places=3),
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal("900"), places=2),
    ),
    max_size=20,
)


@given(sites_st, st.integers(min_value=1, max_value=12))
@settings(max_examples=200, deadline=None)
def test_areas_cover_every_system_once_and_each_reaches_k(raw, k):
    # a community without systems has no capacity
    sites = [
        an.Site(f"s{i:02d}", lat, lon, n, cap if n else Decimal(0))
        for i, (n, lat, lon, cap) in enumerate(raw)
    ]
    areas = an.k_anonymous_areas(sites, k)
    total = sum(s.count for s in sites)
    if total < k:
        assert areas == []
        return
    assert all(a.count >= k for a in areas)
    assert sum(a.count for a in areas) == total
    assert sum((a.capacity_kwp for a in areas), Decimal(0)) == sum(
        (s.capacity_kwp for s in sites), Decimal(0)
    )
    keys = [x for a in areas for x in a.keys]
    assert sorted(keys) == sorted(s.key for s in sites if s.count > 0)


def test_owner_type_household_below_k_is_suppressed_with_a_complement():
    cells = an.suppress_categories(
        {
            "household": (3, Decimal("18")),
            "enterprise": (2, Decimal("1300")),
            "institution": (1, Decimal("96")),
        },
        k=5,
        protected={"household"},
    )
    shown = {c.key: c for c in cells}
    assert shown["household"].suppressed
    # the complementary cell: the smallest other, so total − shown cells does not give the households
    assert shown["institution"].suppressed
    assert shown["enterprise"].count == 2


def test_owner_type_shown_when_every_protected_cell_reaches_k():
    cells = an.suppress_categories(
        {
            "household": (10, Decimal("60")),
            "enterprise": (3, Decimal("1560")),
            "institution": (0, Decimal(0)),
        },
        k=5,
        protected={"household"},
    )
    assert [(c.key, c.count) for c in cells] == [("household", 10), ("enterprise", 3), ("institution", 0)]


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(min_value=0, max_value=12),
        min_size=1,
    ),
    st.integers(min_value=2, max_value=8),
)
def test_no_single_protected_cell_is_recoverable_from_the_total(counts, k):
    cells = an.suppress_categories({key: (n, Decimal(n)) for key, n in counts.items()}, k)
    hidden = [c for c in cells if c.suppressed]
    for c in cells:
        if not c.suppressed:
            assert c.count == 0 or c.count >= k
    nonzero_others = [key for key, n in counts.items() if n > 0]
    if hidden:
        # never exactly one hidden cell when another non-empty cell could hide it
        assert len(hidden) >= 2 or len(nonzero_others) == 1


def test_months_and_parse():
    assert mt.months(date(2025, 11, 15), date(2026, 2, 1)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert mt.add_months(date(2025, 1, 1), -1) == date(2024, 12, 1)
    assert mt.parse_month("2025-06") == date(2025, 6, 1)
    for bad in ("2025-13", "25-06", "2025/06", "", "2025-6-1"):
        with pytest.raises(ValueError):
            mt.parse_month(bad)


def test_completeness_counts_only_the_expected_window():
    first = datetime(2025, 6, 1, tzinfo=UTC)
    end = datetime(2025, 7, 1, tzinfo=UTC)
    now = datetime(2025, 6, 11, tzinfo=UTC)
    w = mt.expected_window(first, end, now, since=datetime(2025, 6, 6, tzinfo=UTC))
    assert w.seconds == 5 * 86400 and w.days == 5
    c = mt.Completeness(covered_s=4 * 86400, expected_s=w.seconds, days_with_data=4, days_expected=w.days)
    assert c.interval_pct == Decimal("80.0") and c.daily_pct == Decimal("80.0")
    # a system connected after now expects nothing
    later = mt.expected_window(first, end, now, since=datetime(2025, 6, 20, tzinfo=UTC))
    assert later.seconds == 0 and later.days == 0
    assert mt.Completeness(0, 0, 0, 0).interval_pct is None


def test_combined_completeness_caps_each_meter():
    a = mt.Completeness(covered_s=200, expected_s=100, days_with_data=3, days_expected=2)  # duplicate cover
    b = mt.Completeness(covered_s=0, expected_s=100, days_with_data=0, days_expected=2)
    total = mt.combine([a, b])
    assert total.interval_pct == Decimal("50.0") and total.daily_pct == Decimal("50.0")


def test_prorated_bound():
    assert mt.prorated_bound(Decimal("300"), 10 * 86400, 30 * 86400) == Decimal("100.00")
    assert mt.prorated_bound(Decimal("300"), 40 * 86400, 30 * 86400) == Decimal("300.00")
    assert mt.prorated_bound(Decimal("300"), -5, 30 * 86400) == Decimal("0.00")


def test_market_days_roll_up_into_months():
    days = [
        mt.DayPoint(date(2025, 6, 3), Decimal("50"), Decimal("52"), 10, Decimal("515"), 2),
        mt.DayPoint(date(2025, 6, 20), None, None, 0, Decimal(0), 0),
        mt.DayPoint(date(2025, 6, 28), Decimal("53"), Decimal("55"), 5, Decimal("272.5"), 1),
        mt.DayPoint(date(2025, 7, 1), Decimal("55"), Decimal("54"), 2, Decimal("108"), 1),
    ]
    june, july = mt.monthly_market(days)
    assert (june.volume_t, june.value_cny, june.trades, june.close) == (
        15,
        Decimal("787.5"),
        3,
        Decimal("55"),
    )
    assert june.average_price == Decimal("52.50")
    assert july.close == Decimal("54")
    assert mt.MonthPoint(date(2025, 8, 1), 0, Decimal(0), 0, None).average_price is None
