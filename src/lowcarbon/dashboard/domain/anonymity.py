"""k-anonymous publication of where PV systems are and how they split by owner type.

A public map must not let anyone single out a household: every published area covers at least `k` systems
(the caller passes k: the platform's versioned parameter `dashboard.k_anonymity`, 5 unless changed). Areas start as communities (placed at the community's approximate public centre, never at a
system's coordinates); a community with fewer than k systems is merged with its nearest neighbour, repeatedly,
until every area reaches k. When the whole town has fewer than k systems nothing is published.

Categories (owner types) follow the usual statistical-disclosure rule: a protected category below k is suppressed,
and when exactly one cell would be suppressed a second (the smallest other) is suppressed with it, so that the
suppressed value cannot be recovered by subtracting the shown cells from the published total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

_PLACE = Decimal("0.001")


@dataclass(frozen=True)
class Site:
    """Systems of one community: the community's public centre, the number of systems and their capacity."""

    key: str
    latitude: Decimal
    longitude: Decimal
    count: int
    capacity_kwp: Decimal


@dataclass(frozen=True)
class Area:
    """A published area: one community or several neighbouring ones merged, with at least k systems. Its point is
    the count-weighted mean of its communities' centres, rounded to 0.001° (≈ 100 m)."""

    keys: tuple[str, ...]
    latitude: Decimal
    longitude: Decimal
    count: int
    capacity_kwp: Decimal


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance between two (lat, lon) points: exact enough at the scale of a town."""
    lat = math.radians((a[0] + b[0]) / 2)
    dx = math.radians(b[1] - a[1]) * math.cos(lat)
    dy = math.radians(b[0] - a[0])
    return 6371.0 * math.hypot(dx, dy)


@dataclass
class _Group:
    keys: list[str]
    lat_sum: Decimal
    lon_sum: Decimal
    weight: int
    count: int
    capacity: Decimal

    def centre(self) -> tuple[float, float]:
        return float(self.lat_sum / self.weight), float(self.lon_sum / self.weight)


def k_anonymous_areas(sites: Iterable[Site], k: int) -> list[Area]:
    """Areas of at least k systems covering every site with systems, each site in exactly one area; [] when the
    town as a whole has fewer than k. Merging is greedy: the smallest area (ties by key) joins its nearest
    neighbour, so merged areas stay compact."""
    if k < 1:
        raise ValueError("k must be at least 1")
    groups = [
        _Group(
            [s.key],
            s.latitude * max(s.count, 1),
            s.longitude * max(s.count, 1),
            max(s.count, 1),
            s.count,
            s.capacity_kwp,
        )
        for s in sorted(sites, key=lambda s: s.key)
        if s.count > 0
    ]
    if sum(g.count for g in groups) < k:
        return []
    while True:
        small = [g for g in groups if g.count < k]
        if not small:
            break
        g = min(small, key=lambda x: (x.count, x.keys[0]))
        others = [o for o in groups if o is not g]
        here = g.centre()
        near = min(others, key=lambda o: (_distance_km(here, o.centre()), o.keys[0]))
        near.keys.extend(g.keys)
        near.keys.sort()
        near.lat_sum += g.lat_sum
        near.lon_sum += g.lon_sum
        near.weight += g.weight
        near.count += g.count
        near.capacity += g.capacity
        groups.remove(g)
    areas = [
        Area(
            keys=tuple(g.keys),
            latitude=(g.lat_sum / g.weight).quantize(_PLACE),
            longitude=(g.lon_sum / g.weight).quantize(_PLACE),
            count=g.count,
            capacity_kwp=g.capacity,
        )
        for g in groups
    ]
    return sorted(areas, key=lambda a: (-a.count, a.keys))


@dataclass(frozen=True)
class Cell:
    """A published category value; `suppressed` cells carry no numbers."""

    key: str
    count: int | None
    capacity_kwp: Decimal | None

    @property
    def suppressed(self) -> bool:
        return self.count is None


def suppress_categories(
    values: Mapping[str, tuple[int, Decimal]], k: int, protected: Iterable[str] | None = None
) -> list[Cell]:
    """Cells of a one-way table {category: (count, capacity)} with the protected categories below k suppressed,
    plus a complementary suppression when only one cell is suppressed. Categories with no systems stay as 0 (an
    empty category identifies no one). `protected=None` protects every category."""
    keys = list(values)
    prot = set(keys if protected is None else protected)
    hidden = {c for c in keys if c in prot and 0 < values[c][0] < k}
    if len(hidden) == 1:
        rest = [c for c in keys if c not in hidden and values[c][0] > 0]
        if rest:
            hidden.add(min(rest, key=lambda c: (values[c][0], c)))
    return [Cell(c, None, None) if c in hidden else Cell(c, values[c][0], values[c][1]) for c in keys]


def publishable(count: int, k: int) -> bool:
    """Whether a figure that covers `count` systems may be published (no figure about fewer than k systems)."""
    return count >= k
