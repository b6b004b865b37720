"""Benchmark of the grouped clear-sky bound (domain.md §4.4): 10,000 synthetic Xiaolan systems, cold (no
ClearSkyProfile cache), timed several times. Prints one markdown row for bench/results/physical_bound.md.

    .venv/bin/python bench/physical_bound.py [--systems 10000] [--runs 5] [--year 2025] [--seed 2018]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import date
from decimal import Decimal

from _report import emit
from lowcarbon.pv.domain import physics

TARGET_S = 2.0
#: pv.performance_ratio_clear_sky v1 (core/seed.py); the service reads it from the parameter table
SYSTEM_EFFICIENCY = Decimal("0.86")


def synthetic_specs(n: int, seed: int) -> list[physics.SystemSpec]:
    """Systems spread over Xiaolan (22.63–22.71 N, 113.21–113.28 E), tilts 5–30° in 5° steps, azimuths 90–270°
    in 5° steps (weighted towards south), capacities of households and small enterprises."""
    rng = random.Random(seed)
    azimuths = list(range(90, 271, 5))
    weights = [1.0 / (1 + abs(a - 180) / 30) for a in azimuths]
    specs = []
    for i in range(n):
        capacity = rng.uniform(3, 30) if rng.random() < 0.85 else rng.uniform(30, 500)
        specs.append(
            physics.SystemSpec(
                system_id=i + 1,
                latitude=Decimal(f"{rng.uniform(22.63, 22.71):.5f}"),
                longitude=Decimal(f"{rng.uniform(113.21, 113.28):.5f}"),
                tilt=Decimal(rng.choice(range(5, 31, 5))),
                azimuth=Decimal(rng.choices(azimuths, weights)[0]),
                capacity_kwp=Decimal(f"{capacity:.3f}"),
            )
        )
    return specs


def machine() -> str:
    """nproc, CPU model and RAM of this machine, from /proc where available."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, {cpu}, RAM {ram}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--header", action="store_true", help="print the table header first")
    args = parser.parse_args(argv)

    specs = synthetic_specs(args.systems, args.seed)
    groups = len({physics.orientation_key(s.latitude, s.longitude, s.tilt, s.azimuth) for s in specs})
    locations = len(
        {
            (k.latitude, k.longitude)
            for k in (physics.orientation_key(s.latitude, s.longitude, s.tilt, s.azimuth) for s in specs)
        }
    )
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        bounds = physics.clear_sky_bounds(specs, args.year, SYSTEM_EFFICIENCY)
        times.append(time.perf_counter() - start)
        assert len(bounds) == len(specs)
    annual = sorted(b.annual_kwh / s.capacity_kwp for s, b in zip(specs, bounds.values(), strict=True))
    best, median, worst = min(times), statistics.median(times), max(times)
    verdict = "meets" if median <= TARGET_S else "misses"
    command = (
        "`.venv/bin/python bench/physical_bound.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`"
    )
    if args.header:
        print(
            "| date | command | machine | systems (groups, locations) | runs | min / median / max (s) | target | result |"
        )
        print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {date.today().isoformat()} | {command.replace(' `', '`')} | {machine()} | "
        f"{len(specs):,} ({groups:,}, {locations}) | {args.runs} | {best:.2f} / {median:.2f} / {worst:.2f} | "
        f"≤ {TARGET_S:.0f} s | {verdict} (annual clear-sky {annual[0]:.0f}–{annual[-1]:.0f} kWh/kWp) |"
    )
    emit(
        "physical_bound",
        median,
        "s",
        f"≤ {TARGET_S:g} s",
        median <= TARGET_S,
        what=f"clear-sky physical bound, {len(specs):,} systems ({groups:,} groups, {locations} locations), "
        f"year {args.year}, cold",
        detail=f"median of {args.runs} runs; min {best:.2f} s, max {worst:.2f} s",
    )


if __name__ == "__main__":
    main()
