"""The claim of an application: whole PHCER units from the members' avoided emissions (domain.md §2.6).

Each member (a PV system; in a bundle, one household) brings its avoided emissions over the period (the sum of its
monthly quantification results, kg CO2e) plus the kg carried in from its previous application. The application is
floored to whole tonnes **once**, on the total (not per member: per-member flooring would lose up to ~1 t per
household and period). The whole units are then apportioned to the members by the largest-remainder method on their
own tonnes (kg / 1000): every member first receives the whole tonnes it produced, and the units the pooling gained
go to the members with the largest fractions of a tonne. Each member's leftover, `kg − 1000 × units`, is carried to
its next application, so that

    Σ 1000 × units + Σ carry_out = Σ (er + carry_in)      exactly, per member and in total.

A member that received a pooled unit carries a negative amount (the part of that tonne produced by the others'
fractions), which its next claim settles; every member's carry-out lies strictly between −1 t and +1 t, i.e. its
units differ from its own exact tonnes by less than one.

Pure Python and exact decimals; no rounding other than the one floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

KG_PER_UNIT = Decimal(1000)


@dataclass(frozen=True)
class MemberInput:
    """One member of a claim: its key (the system code), avoided emissions over the period and the kg carried in."""

    key: str
    er_kg: Decimal
    carry_in_kg: Decimal = Decimal(0)

    @property
    def kg(self) -> Decimal:
        return self.er_kg + self.carry_in_kg


@dataclass(frozen=True)
class MemberShare:
    """A member's part of the claim and how it was reached (shown to the household)."""

    key: str
    er_kg: Decimal
    carry_in_kg: Decimal
    kg: Decimal
    exact_t: Decimal  # kg / 1000, the member's own tonnes
    floor_units: int  # whole tonnes of its own (0 when kg ≤ 0)
    remainder_t: Decimal  # exact_t − floor_units, the fraction ranked by the largest-remainder method
    rank: int | None  # 1 = largest remainder; None when the member had no fraction to rank
    adjustment: int  # +1 (a pooled unit), −1 (a unit taken back, only with negative carry-ins) or 0
    units: int
    carry_out_kg: Decimal
    share: Decimal  # fraction of the claim's positive kg (0..1), for display


@dataclass(frozen=True)
class Claim:
    """The whole claim: totals, the single floor, and every member's share."""

    members: tuple[MemberShare, ...]
    er_kg: Decimal
    carry_in_kg: Decimal
    kg: Decimal
    units: int
    floor_sum_units: int  # Σ of the members' own whole tonnes (what per-member flooring would give)
    pooled_units: int  # units − floor_sum_units: gained by flooring once
    carry_out_kg: Decimal

    def member(self, key: str) -> MemberShare:
        for m in self.members:
            if m.key == key:
                return m
        raise KeyError(key)


def floor_units(kg: Decimal) -> int:
    """Whole tonnes in `kg`, rounded down (never below 0)."""
    if kg <= 0:
        return 0
    return int((kg / KG_PER_UNIT).to_integral_value(rounding=ROUND_FLOOR))


def largest_remainder(
    quotas: Sequence[Decimal], total: int, tiebreak: Sequence[Decimal] | None = None
) -> list[int]:
    """Apportion `total` whole units to non-negative `quotas` (Hamilton / largest-remainder method): each gets
    floor(quota) and the units still to give go one each to the largest fractional parts. When the floors already
    exceed `total`, the quotas are first scaled down to sum to `total` (the textbook method). Ties: larger `tiebreak`
    value first (default: larger quota), then position. ValueError when Σ quotas is short of `total` by a whole
    unit per quota or more."""
    if total < 0:
        raise ValueError("total must not be negative")
    if any(q < 0 for q in quotas):
        raise ValueError("quotas must not be negative")
    keys = list(tiebreak) if tiebreak is not None else list(quotas)
    floors = [int(q.to_integral_value(rounding=ROUND_FLOOR)) for q in quotas]
    fracs = [q - f for q, f in zip(quotas, floors, strict=True)]
    diff = total - sum(floors)
    out = list(floors)
    if diff > 0:
        if diff > len(quotas):
            raise ValueError("the quotas are too small for the total")
        order = sorted(range(len(quotas)), key=lambda i: (-fracs[i], -keys[i], i))
        for i in order[:diff]:
            out[i] += 1
    elif diff < 0:
        # the quotas hold more than `total`: classic Hamilton on the quotas scaled down to sum to `total`
        whole = sum(quotas, Decimal(0))
        return largest_remainder([q * total / whole for q in quotas], total, keys)
    return out


def compute_claim(members: Sequence[MemberInput]) -> Claim:
    """The claim of an application: floor the total once, apportion by largest remainder of the members' own tonnes,
    carry each member's leftover (domain.md §2.6). Members with zero or negative kg (a debt carried in larger than
    the period's reductions) receive no unit and carry their kg on. Keys must be unique."""
    keys = [m.key for m in members]
    if len(set(keys)) != len(keys):
        raise ValueError("member keys must be unique")
    er = sum((m.er_kg for m in members), Decimal(0))
    carry_in = sum((m.carry_in_kg for m in members), Decimal(0))
    total = er + carry_in
    units = floor_units(total)
    positive = [max(m.kg, Decimal(0)) for m in members]
    quotas = [p / KG_PER_UNIT for p in positive]
    allocated = largest_remainder(quotas, units) if members else []
    floors = [floor_units(p) for p in positive]
    fracs = [q - f for q, f in zip(quotas, floors, strict=True)]
    ranked = sorted(
        (i for i in range(len(members)) if fracs[i] > 0), key=lambda i: (-fracs[i], -quotas[i], i)
    )
    rank_of = {i: r + 1 for r, i in enumerate(ranked)}
    positive_total = sum(positive, Decimal(0))
    shares = tuple(
        MemberShare(
            key=m.key,
            er_kg=m.er_kg,
            carry_in_kg=m.carry_in_kg,
            kg=m.kg,
            exact_t=m.kg / KG_PER_UNIT,
            floor_units=floors[i],
            remainder_t=fracs[i],
            rank=rank_of.get(i),
            adjustment=allocated[i] - floors[i],
            units=allocated[i],
            carry_out_kg=m.kg - KG_PER_UNIT * allocated[i],
            share=(positive[i] / positive_total) if positive_total > 0 else Decimal(0),
        )
        for i, m in enumerate(members)
    )
    floor_sum = sum(floors)
    return Claim(
        members=shares,
        er_kg=er,
        carry_in_kg=carry_in,
        kg=total,
        units=units,
        floor_sum_units=floor_sum,
        pooled_units=units - floor_sum,
        carry_out_kg=total - KG_PER_UNIT * units,
    )


def explanation(claim: Claim, key: str) -> dict[str, object]:
    """How one member's share was computed, as plain data (decimals as strings) for the page and the report."""
    m = claim.member(key)
    return {
        "key": m.key,
        "er_kg": str(m.er_kg),
        "carry_in_kg": str(m.carry_in_kg),
        "kg": str(m.kg),
        "exact_t": str(m.exact_t),
        "floor_units": m.floor_units,
        "remainder_t": str(m.remainder_t),
        "rank": m.rank,
        "adjustment": m.adjustment,
        "units": m.units,
        "carry_out_kg": str(m.carry_out_kg),
        "share": str(m.share),
        "members": len(claim.members),
        "bundle_kg": str(claim.kg),
        "bundle_units": claim.units,
        "bundle_floor_sum_units": claim.floor_sum_units,
        "bundle_pooled_units": claim.pooled_units,
        "bundle_carry_out_kg": str(claim.carry_out_kg),
    }
