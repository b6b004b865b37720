"""Serial numbers and serial-block arithmetic, without a database (domain.md §3.7, §2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowcarbon.registry.domain import serials as ds

pytestmark = pytest.mark.unit

D = Decimal

codes = st.from_regex(r"\A[A-Z0-9][A-Z0-9-]{0,15}[A-Z0-9]\Z")
vintages = st.integers(2017, 2099)
numbers = st.integers(1, 10**10)


def test_series_and_serial_text_follow_the_platform_format():
    series = ds.series_name("PV2022", "0012", 2024)
    assert series == "PHCER-GD-PV2022-0012-2024"
    assert ds.serial_text(series, 1, 37) == "PHCER-GD-PV2022-0012-2024-00000001-00000037"
    assert ds.unit_text(series, 5) == "PHCER-GD-PV2022-0012-2024-00000005"
    # wider numbers are written in full, never cut
    assert ds.serial_text(series, 99_999_999, 123_456_789).endswith("-99999999-123456789")


@pytest.mark.parametrize(
    ("methodology", "project", "vintage"),
    [
        ("", "P1", 2024),
        ("GD PV", "P1", 2024),
        ("GD-PV", "P/1", 2024),
        ("GD-PV", "P1", 24),
        ("GD-PV", "P1", 20245),
    ],
)
def test_series_name_refuses_codes_that_would_break_the_serial(methodology, project, vintage):
    with pytest.raises(ds.SerialError):
        ds.series_name(methodology, project, vintage)


def test_parse_reads_codes_with_dashes_from_the_right():
    series = ds.series_name("GD-PV-2017-V01", "PV-T00012", 2023)
    assert ds.parse_serial(f" {series}-00000010-00000019 ") == ds.SerialRef(series, 10, 19)
    assert ds.parse_serial(f"{series}-00000012") == ds.SerialRef(series, 12, 12)
    assert ds.parse_unit(f"{series}-00000010-00000019") == (series, 10)
    assert ds.parse_unit(f"{series}-00000012") == (series, 12)
    assert ds.parse_serial(f"{series}-00000010-00000019").quantity == 10


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PHCER-GD-GD-PV-P1-2024",  # a series, no number
        "PHCER-GD-GD-PV-P1-2024-0001",  # number narrower than 8 digits
        "VCS-GD-PV-P1-2024-00000001-00000002",  # another registry
        "PHCER-GD-P1-2024-00000001",  # no methodology code
        "PHCER-GD-GD-PV-P1-24-00000001",  # vintage not four digits
        "PHCER-GD-GD-PV-P1-2024-00000009-00000003",  # end before start
        "PHCER-GD-GD-PV-P1-2024-00000000",  # numbers start at 1
        "PHCER-GD-GD-PV-P1-2024-0000000X",
    ],
)
def test_parse_refuses_what_is_not_a_serial(text):
    with pytest.raises(ds.SerialError):
        ds.parse_serial(text)


@given(codes, codes, vintages, numbers, st.integers(0, 10**6))
def test_parse_inverts_serial_and_unit_text(methodology, project, vintage, start, length):
    series = ds.series_name(methodology, project, vintage)
    end = start + length
    assert ds.parse_serial(ds.serial_text(series, start, end)) == ds.SerialRef(series, start, end)
    assert ds.parse_unit(ds.unit_text(series, end)) == (series, end)


def test_allocate_starts_after_the_last_number():
    assert ds.allocate(0, 37) == ds.Range(1, 37)
    assert ds.allocate(37, 5) == ds.Range(38, 42)
    with pytest.raises(ds.SerialError):
        ds.allocate(10, 0)
    with pytest.raises(ds.SerialError):
        ds.allocate(-1, 3)


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=30))
def test_allocations_from_one_counter_are_contiguous_and_never_overlap(quantities):
    last = 0
    ranges = []
    for q in quantities:
        r = ds.allocate(last, q)
        assert r.start == last + 1 and r.quantity == q
        ranges.append(("S", r.start, r.end))
        last = r.end
    assert ds.overlapping(ranges) == []
    assert last == sum(quantities)


def test_split_takes_units_from_the_start():
    moved, kept = ds.split_range(11, 50, 15)
    assert (moved, kept) == (ds.Range(11, 25), ds.Range(26, 50))
    for bad in (0, 40, 41, -2):
        with pytest.raises(ds.SerialError):
            ds.split_range(11, 50, bad)


@given(numbers, st.integers(1, 10**6), st.data())
def test_a_split_loses_and_duplicates_no_unit(start, size, data):
    if size < 2:
        return
    q = data.draw(st.integers(1, size - 1))
    end = start + size - 1
    moved, kept = ds.split_range(start, end, q)
    assert moved.quantity == q and moved.quantity + kept.quantity == size
    assert ds.covers_exactly((start, end), [(moved.start, moved.end), (kept.start, kept.end)])


@dataclass(frozen=True)
class Blk:
    start: int
    end: int


def test_choose_blocks_takes_whole_blocks_in_order_and_splits_the_last():
    blocks = [Blk(1, 10), Blk(31, 35), Blk(50, 99)]
    sel = ds.choose_blocks(blocks, 18)
    assert sel.sufficient and sel.available == 65
    assert [(t.block, t.quantity, t.whole) for t in sel.takes] == [
        (Blk(1, 10), 10, True),
        (Blk(31, 35), 5, True),
        (Blk(50, 99), 3, False),
    ]
    exact = ds.choose_blocks(blocks, 15)
    assert [t.whole for t in exact.takes] == [True, True]


def test_choose_blocks_reports_what_is_available_when_short():
    sel = ds.choose_blocks([Blk(1, 10), Blk(20, 21)], 13)
    assert not sel.sufficient
    assert (sel.available, sel.asked, sel.takes) == (12, 13, ())
    with pytest.raises(ds.SerialError):
        ds.choose_blocks([Blk(1, 10)], 0)


@given(st.lists(st.integers(1, 500), min_size=0, max_size=20), st.integers(1, 3000))
def test_choose_blocks_covers_exactly_with_at_most_one_partial(sizes, quantity):
    blocks, n = [], 1
    for size in sizes:
        blocks.append(Blk(n, n + size - 1))
        n += size + 3
    sel = ds.choose_blocks(blocks, quantity)
    assert sel.available == sum(sizes)
    if sum(sizes) < quantity:
        assert not sel.sufficient and sel.takes == ()
        return
    assert sum(t.quantity for t in sel.takes) == quantity
    assert [t.block for t in sel.takes] == blocks[: len(sel.takes)]  # oldest first, no skipping
    assert all(t.whole for t in sel.takes[:-1])
    assert all(0 < t.quantity <= t.block.end - t.block.start + 1 for t in sel.takes)


def test_largest_remainder_gives_leftover_units_to_largest_remainders():
    # quotas 4.6, 3.3, 2.1 -> floors 4, 3, 2 and one unit left for the largest remainder (a)
    assert ds.largest_remainder(10, {"a": D("4600"), "b": D("3300"), "c": D("2100")}) == {
        "a": 5,
        "b": 3,
        "c": 2,
    }


def test_largest_remainder_breaks_ties_by_key_order_whatever_the_insertion_order():
    assert ds.largest_remainder(1, {"c": D(1), "a": D(1), "b": D(1)}) == {"a": 1, "b": 0, "c": 0}
    assert ds.largest_remainder(2, {3: D(5), 1: D(5), 2: D(5)}) == {1: 1, 2: 1, 3: 0}


def test_largest_remainder_edge_cases():
    assert ds.largest_remainder(0, {"a": D(0), "b": D(0)}) == {"a": 0, "b": 0}
    assert ds.largest_remainder(0, {}) == {}
    assert ds.largest_remainder(7, {"only": D("0.001")}) == {"only": 7}
    with pytest.raises(ValueError):
        ds.largest_remainder(3, {"a": D(0)})
    with pytest.raises(ValueError):
        ds.largest_remainder(3, {"a": D(-1), "b": D(5)})
    with pytest.raises(ValueError):
        ds.largest_remainder(-1, {"a": D(1)})


shares = st.dictionaries(
    st.text(alphabet="abcdefghij", min_size=1, max_size=3),
    st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=15,
)


@given(st.integers(0, 500), shares, st.randoms(use_true_random=False))
def test_largest_remainder_is_exact_fair_and_deterministic(total, kg, rnd):
    if sum(kg.values()) == 0:
        return
    out = ds.largest_remainder(total, kg)
    assert sum(out.values()) == total
    whole = sum(Fraction(v) for v in kg.values())
    for k, units in out.items():
        quota = Fraction(kg[k]) * total / whole
        assert int(quota) <= units <= int(quota) + 1  # each key gets the floor or the ceiling of its quota
    keys = list(kg)
    rnd.shuffle(keys)
    assert ds.largest_remainder(total, {k: kg[k] for k in keys}) == out


def test_overlap_and_partition_checks():
    assert ds.overlapping([("S", 1, 10), ("S", 11, 20), ("T", 5, 9)]) == []
    assert ds.overlapping([("S", 1, 10), ("S", 10, 20)]) == [("S", 1, 10, 10, 20)]
    assert ds.covers_exactly((1, 10), [(6, 10), (1, 5)])
    assert not ds.covers_exactly((1, 10), [(1, 5), (7, 10)])
    assert not ds.covers_exactly((1, 10), [(1, 5), (5, 10)])
