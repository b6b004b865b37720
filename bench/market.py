"""End-to-end market fills with settlement on PostgreSQL, on a fresh database (`bench_market`, or
LOWCARBON_BENCH_PG_DB, created, migrated with `lowcarbon migrate` and dropped; the shared runner of bench/_common.py
and the population helpers of bench/registry.py):

    .venv/bin/python bench/market.py takes --threads 16 --procs 4 --seconds 20
    .venv/bin/python bench/market.py sweep --listings 2000

takes  S sellers with issued units each place L listings; client threads (each with its own connection, spread over
       P processes) take 1–3 t from a random open listing (`market.services.do_take_listing`: lock the listing,
       check, move the reserved serial blocks to the buyer, write the transfer, the journal entry, the trade, the
       surveillance checks and both parties' notifications, in one transaction) for a fixed time. Reports fills
       per second and the latency of a call; afterwards checks conservation, that no listing sold more than it
       listed, that every open listing still has exactly its remaining units reserved, and the journal.
sweep  L one-tonne listings from S sellers, then ONE buy request that crosses all of them
       (`do_place_buy_request`): the engine matches and each fill is settled inside that one transaction. Reports
       fills per second of the sweep.

Target (issue): ≥ 1,000 fills/s end to end on PostgreSQL. Set LOWCARBON_BENCH_PG_URL for another server.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from datetime import date

import _common
import registry as rb  # bench/registry.py: the population and the ledger checks
from _report import emit

TARGET = 1000
PG_DB = _common.pg_db("bench_market")


def child(env: dict[str, str], *args: str) -> dict:
    return _common.child(__file__, env, *args)


def child_setup(sellers: int, listings: int, size: int, buyers: int) -> dict:
    _common.setup_django()
    from decimal import Decimal

    from lowcarbon.accounts.models import User
    from lowcarbon.market import services as m
    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import RegistryAccount

    rb.make_population(sellers, listings * size, issue=True)
    rng = random.Random(5)
    t0 = time.perf_counter()
    for acct in RegistryAccount.objects.select_related("owner_user").order_by("pk"):
        for _ in range(listings):
            m.do_place_listing(
                account=acct,
                actor=acct.owner_user,
                quantity=size,
                price=Decimal("22.00") + Decimal(rng.randrange(0, 400)) / 100,
            )
    placed = time.perf_counter() - t0
    for i in range(buyers):
        u = User.objects.create_user(f"bench-buyer-{i:03d}", real_name=f"买方{i}")
        ledger.account_for_user(u)
    return {"listings": sellers * listings, "placing_s": placed}


def child_takes(threads: int, seconds: float, seed: int) -> dict:
    _common.setup_django()
    from lowcarbon.market import services as m
    from lowcarbon.market.models import Order
    from lowcarbon.registry.models import RegistryAccount

    listings = list(Order.objects.filter(side="sell", state="open").order_by("pk"))
    buyers = list(
        RegistryAccount.objects.filter(owner_user__username__startswith="bench-buyer-").select_related(
            "owner_user"
        )
    )

    def make_op(k: int):  # noqa: ANN202 - one client thread's call
        buyer = buyers[(seed * threads + k) % len(buyers)]

        def prepare(rng: random.Random):  # noqa: ANN202
            listing = rng.choice(listings)
            q = rng.randint(1, 3)
            return lambda: m.do_take_listing(
                listing=listing, account=buyer, actor=buyer.owner_user, quantity=q
            )

        return prepare

    return _common.client_threads(threads, seconds, seed, make_op)


def child_sweep(quantity: int) -> dict:
    _common.setup_django()
    from decimal import Decimal

    from lowcarbon.market import services as m
    from lowcarbon.registry.models import RegistryAccount

    buyer = RegistryAccount.objects.select_related("owner_user").get(owner_user__username="bench-buyer-000")
    t0 = time.perf_counter()
    _order, trades = m.do_place_buy_request(
        account=buyer, actor=buyer.owner_user, quantity=quantity, price=Decimal("26.00")
    )
    return {"fills": len(trades), "seconds": time.perf_counter() - t0}


def child_check() -> dict:
    base = rb.child_ledger_check()
    from django.db.models import Sum

    from lowcarbon.market.models import Order, Trade
    from lowcarbon.registry import ledger

    oversold = 0
    wrong_reservation = 0
    for o in Order.objects.filter(side="sell"):
        sold = Trade.objects.filter(sell_order=o).aggregate(q=Sum("quantity"))["q"] or 0
        oversold += sold > o.quantity or sold != o.quantity - o.remaining
        wrong_reservation += ledger.reserved(o.number) != (o.remaining if o.state == "open" else 0)
    return {**base, "oversold_listings": oversold, "wrong_reservations": wrong_reservation}


def bench_takes(args: argparse.Namespace) -> dict:
    env = _common.fresh_db("postgres", PG_DB)
    try:
        setup = child(env, "setup", str(args.sellers), str(args.listings), str(args.size), str(args.threads))
        lat, refused, errors, _counters = _common.run_clients(
            __file__, env, args.threads, args.procs, lambda i, n: ["takes", str(n), str(args.seconds), str(i)]
        )
        check = child(env, "check")
    finally:
        _common.drop_db(env)
    q = _common.latency_summary(lat, args.seconds)
    rate = q["rate"]
    print(
        f"takes: {rate:,.0f} fills/s over {args.seconds:.0f} s ({len(lat):,} fills, {args.threads} threads in "
        f"{args.procs} process(es), {setup['listings']} listings); latency p50 {q['p50_ms']:.1f} ms, p95 "
        f"{q['p95_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms; refused {refused}; errors {errors}; target "
        f"{TARGET}/s; after: {check}",
        flush=True,
    )
    emit(
        "takes_rate",
        rate,
        "fills/s",
        f"≥ {TARGET:,} /s",
        rate >= TARGET,
        what=f"market end-to-end fills with settlement: {args.threads} buyer threads over {args.procs} processes "
        f"taking 1–3 t from {setup['listings']:,} listings of {args.size} t, PostgreSQL",
        detail=f"{len(lat):,} fills in {args.seconds:g} s; latency p50 {q['p50_ms']:.0f} ms, p95 {q['p95_ms']:.0f} ms, "
        f"p99 {q['p99_ms']:.0f} ms; {sum(refused.values())} refused, {len(errors)} errors; {rb.checks_text(check)}",
    )
    return {"bench": "takes", "rate": rate, "p95_ms": q["p95_ms"], "check": check, "setup": setup}


def bench_sweep(args: argparse.Namespace) -> dict:
    env = _common.fresh_db("postgres", PG_DB)
    try:
        setup = child(env, "setup", str(args.sellers), str(args.listings // args.sellers), "1", "1")
        r = child(env, "sweep", str(args.listings))
        check = child(env, "check")
    finally:
        _common.drop_db(env)
    rate = r["fills"] / r["seconds"]
    print(
        f"sweep: one buy request crossing {setup['listings']} listings: {r['fills']} fills settled in "
        f"{r['seconds']:.2f} s = {rate:,.0f} fills/s (placing the listings took {setup['placing_s']:.1f} s); "
        f"target {TARGET}/s; after: {check}",
        flush=True,
    )
    emit(
        "sweep_rate",
        rate,
        "fills/s",
        f"≥ {TARGET:,} /s",
        rate >= TARGET,
        what=f"market sweep: one buy request crossing {setup['listings']:,} one-tonne listings of "
        f"{args.sellers} sellers, all fills settled in one transaction, PostgreSQL",
        detail=f"{r['fills']:,} fills in {r['seconds']:.2f} s; {rb.checks_text(check)}",
    )
    return {"bench": "sweep", "rate": rate, "check": check}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        step, rest = sys.argv[2], sys.argv[3:]
        if step == "setup":
            out = child_setup(int(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]))
        elif step == "takes":
            out = child_takes(int(rest[0]), float(rest[1]), int(rest[2]))
        elif step == "sweep":
            out = child_sweep(int(rest[0]))
        else:
            out = child_check()
        print(json.dumps(out), flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="bench", required=True)
    t = sub.add_parser("takes")
    t.add_argument("--threads", type=int, default=16)
    t.add_argument("--procs", type=int, default=4)
    t.add_argument("--seconds", type=float, default=20)
    t.add_argument("--sellers", type=int, default=100)
    t.add_argument("--listings", type=int, default=10, help="listings per seller")
    t.add_argument("--size", type=int, default=40, help="tonnes per listing")
    s = sub.add_parser("sweep")
    s.add_argument("--listings", type=int, default=2000)
    s.add_argument("--sellers", type=int, default=100)
    args = ap.parse_args()
    print(f"machine: {_common.machine()}; Python {platform.python_version()}; {date.today()}", flush=True)
    (bench_takes if args.bench == "takes" else bench_sweep)(args)


if __name__ == "__main__":
    main()
