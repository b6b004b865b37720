"""Serial numbers of PHCER units and the arithmetic of serial blocks (domain.md §3.7).

A series is one project × vintage under one methodology: ``PHCER-GD-{methodology}-{project}-{vintage}``; a block
is ``{series}-{start:08d}-{end:08d}``, 1 number = 1 tCO2e. Blocks come from a per-series counter (start = last
end + 1), a partial move splits a block at its start, numbers are never reused. Also the largest-remainder
apportionment of a bundle's whole units among its households (domain.md §2.6).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Generic, Protocol, TypeVar

PREFIX = "PHCER-GD"
#: width of the zero-padded numbers (wider numbers are written in full)
NUMBER_WIDTH = 8

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NUMBER = re.compile(rf"^[0-9]{{{NUMBER_WIDTH},}}$")
_VINTAGE = re.compile(r"^[0-9]{4}$")


class SerialError(ValueError):
    """A text that is not a serial number of this registry, or block arithmetic asked for something impossible."""


def series_name(methodology_code: str, project_code: str, vintage: int) -> str:
    """The series of a project and vintage, e.g. PHCER-GD-GD-PV-2022-PV-00012-2024."""
    for label, code in (("methodology", methodology_code), ("project", project_code)):
        if not _CODE.match(code):
            raise SerialError(f"{label} code {code!r} cannot be part of a serial number")
    if not 1000 <= vintage <= 9999:
        raise SerialError(f"vintage {vintage} is not a four-digit year")
    return f"{PREFIX}-{methodology_code}-{project_code}-{vintage}"


def serial_text(series: str, start: int, end: int) -> str:
    """The serial of a block: series, first and last number."""
    return f"{series}-{start:0{NUMBER_WIDTH}d}-{end:0{NUMBER_WIDTH}d}"


def unit_text(series: str, number: int) -> str:
    """The serial of one unit."""
    return f"{series}-{number:0{NUMBER_WIDTH}d}"


@dataclass(frozen=True)
class SerialRef:
    """A parsed serial: a series and a range of numbers (start = end for a single unit)."""

    series: str
    start: int
    end: int

    @property
    def quantity(self) -> int:
        return self.end - self.start + 1


def _is_series(text: str) -> bool:
    if not text.startswith(PREFIX + "-"):
        return False
    rest = text[len(PREFIX) + 1 :]
    head, _, vintage = rest.rpartition("-")
    return bool(head) and "-" in head and bool(_VINTAGE.match(vintage))


def parse_serial(text: str) -> SerialRef:
    """Parse a block serial (`{series}-{start}-{end}`) or a single unit (`{series}-{number}`).

    The series ends in a four-digit vintage and numbers have at least eight digits, so reading from the right
    is unambiguous even though methodology and project codes contain dashes."""
    cleaned = text.strip()
    parts = cleaned.rsplit("-", 2)
    if len(parts) == 3 and _NUMBER.match(parts[1]) and _NUMBER.match(parts[2]):
        series, start, end = parts[0], int(parts[1]), int(parts[2])
    else:
        series, _, number = cleaned.rpartition("-")
        if not _NUMBER.match(number):
            raise SerialError(f"{text!r} is not a serial number")
        start = end = int(number)
    if not _is_series(series):
        raise SerialError(f"{text!r} is not a serial number of series {PREFIX}-…")
    if start < 1 or end < start:
        raise SerialError(f"{text!r}: the range must run from 1 upwards, first ≤ last")
    return SerialRef(series, start, end)


def parse_unit(text: str) -> tuple[str, int]:
    """(series, number) of a serial text: the unit itself, or the first unit of a block serial."""
    ref = parse_serial(text)
    return ref.series, ref.start


@dataclass(frozen=True)
class Range:
    """Numbers [start, end] of one series."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 1 or self.end < self.start:
            raise SerialError(f"invalid range [{self.start}, {self.end}]")

    @property
    def quantity(self) -> int:
        return self.end - self.start + 1


def allocate(last_end: int, quantity: int) -> Range:
    """The next block from a counter whose last number is `last_end`: start = last_end + 1 (domain.md §3.7)."""
    if last_end < 0:
        raise SerialError("a counter cannot be negative")
    if quantity < 1:
        raise SerialError("a block holds at least one unit")
    return Range(last_end + 1, last_end + quantity)


def split_range(start: int, end: int, quantity: int) -> tuple[Range, Range]:
    """Split [start, end] taking `quantity` units from its start: ([s, s+q−1] moved, [s+q, e] kept)."""
    whole = Range(start, end)
    if not 1 <= quantity < whole.quantity:
        raise SerialError(f"cannot take {quantity} of {whole.quantity} units as a split")
    return Range(start, start + quantity - 1), Range(start + quantity, end)


class BlockLike(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


B = TypeVar("B", bound=BlockLike)


@dataclass(frozen=True)
class Take(Generic[B]):
    """A block chosen to cover a quantity, and how many of its units are taken (all, or a split)."""

    block: B
    quantity: int

    @property
    def whole(self) -> bool:
        return self.quantity == self.block.end - self.block.start + 1


@dataclass(frozen=True)
class Selection(Generic[B]):
    """Blocks covering a quantity in order; at most the last one is taken partially. `available` is what the
    candidates held in total (reported when they do not suffice)."""

    takes: tuple[Take[B], ...]
    available: int
    asked: int

    @property
    def sufficient(self) -> bool:
        return self.available >= self.asked


def choose_blocks(candidates: Iterable[B], quantity: int) -> Selection[B]:
    """Cover `quantity` units from `candidates` taken in the order given (callers pass them oldest first: vintage,
    series, first number); whole blocks first, the last one split if it holds more than needed."""
    if quantity < 1:
        raise SerialError("the quantity must be at least 1")
    takes: list[Take[B]] = []
    need = quantity
    available = 0
    for block in candidates:
        size = block.end - block.start + 1
        available += size
        if need > 0:
            q = min(size, need)
            takes.append(Take(block, q))
            need -= q
    if need > 0:
        return Selection((), available, quantity)
    return Selection(tuple(takes), available, quantity)


K = TypeVar("K", bound=Hashable)


def largest_remainder(total_units: int, shares_kg: Mapping[K, Decimal]) -> dict[K, int]:
    """Apportion whole units in proportion to shares by the largest-remainder (Hamilton) method: each key gets the
    floor of its exact quota, the units left go to the largest remainders; ties go to the key that sorts first
    (then to the earlier one in the mapping when keys do not compare). Exact arithmetic, deterministic."""
    if total_units < 0:
        raise ValueError("total_units must not be negative")
    keys = list(shares_kg)
    shares = {k: Fraction(shares_kg[k]) for k in keys}
    if any(s < 0 for s in shares.values()):
        raise ValueError("shares must not be negative")
    whole = sum(shares.values(), Fraction(0))
    if total_units == 0:
        return dict.fromkeys(keys, 0)
    if whole == 0:
        raise ValueError("cannot apportion units over zero shares")
    quotas = {k: shares[k] * total_units / whole for k in keys}
    result = {k: int(quotas[k]) for k in keys}  # floor: quotas are non-negative
    left = total_units - sum(result.values())
    order = _key_order(keys)
    ranked = sorted(keys, key=lambda k: (-(quotas[k] - result[k]), order[k]))
    for k in ranked[:left]:
        result[k] += 1
    return result


def _key_order(keys: Sequence[Any]) -> dict[Any, int]:
    try:
        ordered = sorted(keys)
    except TypeError:
        ordered = list(keys)
    return {k: i for i, k in enumerate(ordered)}


def overlapping(ranges: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int, int, int]]:
    """Pairs of ranges of the same series that share a number, as (series, s1, e1, s2, e2); empty when none do.
    Used to check that live blocks never overlap (domain.md §3.7)."""
    by_series: dict[str, list[tuple[int, int]]] = {}
    for series, start, end in ranges:
        by_series.setdefault(series, []).append((start, end))
    found: list[tuple[str, int, int, int, int]] = []
    for series, items in sorted(by_series.items()):
        items.sort()
        for (s1, e1), (s2, e2) in zip(items, items[1:], strict=False):
            if s2 <= e1:
                found.append((series, s1, e1, s2, e2))
    return found


def covers_exactly(parent: tuple[int, int], children: Iterable[tuple[int, int]]) -> bool:
    """Whether child ranges partition the parent range without gap or overlap (a split loses no unit)."""
    expected = parent[0]
    for start, end in sorted(children):
        if start != expected or end < start:
            return False
        expected = end + 1
    return expected == parent[1] + 1
