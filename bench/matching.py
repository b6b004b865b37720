"""Market matching benchmarks:

    .venv/bin/python bench/matching.py engine --ops 1000000 --seed 1 --runs 3

engine  throughput of the pure order book (`lowcarbon.market.domain.matching.Book`): a fixed-seed stream of mixed
        operations (adds of limit orders around a drifting mid price, a share of them marketable, some buyers with
        lot filters, and cancels of resting orders) is generated first by a dry run on a scratch book (so every
        cancel names an order that is resting at that moment), then replayed on a fresh book per run with fresh
        Order objects, timing only `Book.add` / `Book.cancel`. Reports operations per second (best and median of
        the runs) and the stream's make-up: share of adds that traded, fills, mean book size. Target ≥ 100,000 /s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from _common import machine  # noqa: E402
from _report import emit  # noqa: E402
from lowcarbon.market.domain.matching import Book, Filters, Lot, Order, Side  # noqa: E402

TARGET = 100_000

VINTAGES = (2022, 2023, 2024, 2025)
METHODOLOGIES = ("GD-PV-2022", "GD-PV-2017", "GD-FOREST")
OWNER_TYPES = ("household", "enterprise", "institution")


# ---------------------------------------------------------------------------------------------------------------
# engine


Op = Order | int  # an Order to add, or the id of an order to cancel


def make_stream(args: argparse.Namespace) -> tuple[list[Op], dict[str, float]]:
    """The operation stream, fixed by the seed, with cancels aimed at orders resting at that point."""
    rng = random.Random(args.seed)
    lots = [Lot(v, m, o) for v in VINTAGES for m in METHODOLOGIES for o in OWNER_TYPES]
    filter_choices = [
        Filters(vintages=frozenset({2024, 2025})),
        Filters(methodologies=frozenset({"GD-PV-2022"})),
        Filters(owner_types=frozenset({"household"})),
        Filters(vintages=frozenset({2025}), methodologies=frozenset({"GD-PV-2022", "GD-PV-2017"})),
    ]
    scratch = Book()
    ops: list[Op] = []
    recent: list[int] = []  # ids added, some since filled; cancels pick among the resting ones
    mid = 2400.0  # 24.00 CNY/t (domain.md §3.5)
    next_id = 1
    adds = crossing = fills = 0
    size_sum = 0
    for _ in range(args.ops):
        size_sum += len(scratch)
        if recent and rng.random() < args.cancel_share:
            target = None
            for _try in range(4):
                k = rng.randrange(max(0, len(recent) - 2000), len(recent))
                if recent[k] in scratch:
                    target = recent[k]
                    break
            if target is not None:
                scratch.cancel(target)
                ops.append(target)
                continue
        mid = min(max(mid + rng.gauss(0, 0.3), 1500), 3500)
        side: Side = "buy" if rng.random() < 0.5 else "sell"
        # passive orders sit 0..spread ticks behind the mid; a share is priced through it
        offset = int(rng.expovariate(1 / args.spread))
        if rng.random() < args.aggressive_share:
            offset = -offset - 1
        price = max(1, round(mid) - offset if side == "buy" else round(mid) + offset)
        qty = max(1, int(rng.lognormvariate(2.3, 1.0)))
        order = Order(
            id=next_id,
            side=side,
            price=price,
            quantity=qty,
            account=rng.randrange(1, args.accounts + 1),
            seq=next_id,
            lot=rng.choice(lots) if side == "sell" else None,
            filters=rng.choice(filter_choices)
            if side == "buy" and rng.random() < args.filtered_share
            else None,
        )
        next_id += 1
        ops.append(replace(order))
        got = scratch.add(order)
        adds += 1
        if got:
            crossing += 1
            fills += len(got)
        if order.quantity:
            recent.append(order.id)
    stats = {
        "adds": adds,
        "cancels": len(ops) - adds,
        "adds_trading_share": crossing / adds if adds else 0.0,
        "fills": fills,
        "mean_book_orders": size_sum / max(1, len(ops)),
        "final_book_orders": len(scratch),
    }
    return ops, stats


def run_engine(ops: list[Op]) -> tuple[float, int]:
    """Replay on a fresh book with fresh orders; only the engine calls are inside the timed loop."""
    fresh: list[Op] = [op if isinstance(op, int) else replace(op) for op in ops]
    book = Book()
    add = book.add
    cancel = book.cancel
    fills = 0
    t0 = time.perf_counter()
    for op in fresh:
        if isinstance(op, int):
            cancel(op)
        else:
            fills += len(add(op))
    return time.perf_counter() - t0, fills


def bench_engine(args: argparse.Namespace) -> dict[str, object]:
    t0 = time.perf_counter()
    ops, stats = make_stream(args)
    print(
        f"engine: stream of {len(ops):,} operations generated in {time.perf_counter() - t0:.1f} s: "
        f"{stats['adds']:,} adds ({stats['adds_trading_share']:.1%} traded), {stats['cancels']:,} cancels, "
        f"{stats['fills']:,} fills, mean book {stats['mean_book_orders']:,.0f} orders",
        flush=True,
    )
    rates = []
    for i in range(args.runs):
        secs, fills = run_engine(ops)
        assert fills == stats["fills"], "replay diverged from the dry run"
        rates.append(len(ops) / secs)
        print(f"  run {i + 1}: {secs:.2f} s, {rates[-1]:,.0f} ops/s", flush=True)
    best, median = max(rates), statistics.median(rates)
    verdict = "meets" if median >= TARGET else "misses"
    print(
        f"engine: {median:,.0f} ops/s median, {best:,.0f} best of {args.runs} runs over {len(ops):,} operations "
        f"(seed {args.seed}); target {TARGET:,}/s → {verdict} (×{median / TARGET:.1f})",
        flush=True,
    )
    emit(
        "engine_ops",
        median,
        "ops/s",
        f"≥ {TARGET:,} /s",
        median >= TARGET,
        what=f"matching engine: order-book adds and cancels per second, {len(ops):,}-operation stream "
        f"(seed {args.seed}), pure Python, no database",
        detail=f"median of {args.runs} runs, best {best:,.0f}; {stats['adds_trading_share']:.1%} of adds traded, "
        f"{stats['fills']:,} fills",
    )
    return {"bench": "engine", "ops": len(ops), "seed": args.seed, "rates": rates, **stats}


# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="bench", required=True)
    eng = sub.add_parser("engine", help="order-book operations per second (pure domain, no database)")
    eng.add_argument("--ops", type=int, default=1_000_000)
    eng.add_argument("--seed", type=int, default=1)
    eng.add_argument("--runs", type=int, default=3)
    eng.add_argument("--accounts", type=int, default=500)
    eng.add_argument(
        "--cancel-share",
        type=float,
        default=0.3,
        help="share of operations that try to cancel a recently added resting order",
    )
    eng.add_argument(
        "--aggressive-share",
        type=float,
        default=0.25,
        help="share of adds priced through the mid (marketable)",
    )
    eng.add_argument("--spread", type=float, default=8.0, help="mean distance in ticks of passive orders")
    eng.add_argument("--filtered-share", type=float, default=0.05, help="share of buys carrying lot filters")
    eng.set_defaults(func=bench_engine)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    row = args.func(args)
    load_after = os.getloadavg()[0]
    print(
        f"machine: {machine()}; Python {platform.python_version()}; 1-minute load {load_before:.2f} → "
        f"{load_after:.2f}; date: {date.today().isoformat()}"
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
