"""End-to-end market fills with settlement on PostgreSQL, on a fresh database (`lowcarbon_bench_registry`, created,
migrated with `lowcarbon migrate` and dropped; the helpers of bench/registry.py):

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
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import registry as rb  # noqa: E402  (bench/registry.py: fresh databases, population, checks)

TARGET = 1000


def child(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_setup(sellers: int, listings: int, size: int, buyers: int) -> dict:
    rb.setup_django()
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
    rb.setup_django()
    from django.db import connection

    from lowcarbon.core.domain.errors import DomainError
    from lowcarbon.market import services as m
    from lowcarbon.market.models import Order
    from lowcarbon.registry.models import RegistryAccount

    listings = list(Order.objects.filter(side="sell", state="open").order_by("pk"))
    buyers = list(
        RegistryAccount.objects.filter(owner_user__username__startswith="bench-buyer-").select_related(
            "owner_user"
        )
    )
    connection.close()
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    lat: list[list[float]] = [[] for _ in range(threads)]
    refused: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        buyer = buyers[(seed * threads + k) % len(buyers)]
        try:
            while time.time() < start_at:
                time.sleep(0.001)
            end = start_at + seconds
            while time.time() < end:
                listing = rng.choice(listings)
                t0 = time.perf_counter()
                try:
                    m.do_take_listing(
                        listing=listing, account=buyer, actor=buyer.owner_user, quantity=rng.randint(1, 3)
                    )
                except DomainError as exc:
                    with lock:
                        refused[exc.code] = refused.get(exc.code, 0) + 1
                    continue
                lat[k].append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(repr(exc))
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"latencies": [x for xs in lat for x in xs], "refused": refused, "errors": errors[:5]}


def child_sweep(quantity: int) -> dict:
    rb.setup_django()
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
    env = rb.fresh_db("postgres")
    try:
        setup = child(env, "setup", str(args.sellers), str(args.listings), str(args.size), str(args.threads))
        per = [
            args.threads // args.procs + (1 if i < args.threads % args.procs else 0)
            for i in range(args.procs)
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", "takes", str(n), str(args.seconds), str(i)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, n in enumerate(per)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        start_at = time.time() + 0.5
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start_at}\n")
            p.stdin.flush()
        lat: list[float] = []
        refused: dict[str, int] = {}
        errors: list[str] = []
        for p in procs:
            out, _ = p.communicate()
            r = json.loads(out.strip().splitlines()[-1])
            lat += r["latencies"]
            errors += r["errors"]
            for k, v in r["refused"].items():
                refused[k] = refused.get(k, 0) + v
        check = child(env, "check")
    finally:
        rb.drop_db("postgres")
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [0.0] * 99
    rate = len(lat) / args.seconds
    print(
        f"takes: {rate:,.0f} fills/s over {args.seconds:.0f} s ({len(lat):,} fills, {args.threads} threads in "
        f"{args.procs} process(es), {setup['listings']} listings); latency p50 {q[49] * 1000:.1f} ms, p95 "
        f"{q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms; refused {refused}; errors {errors}; target "
        f"{TARGET}/s; after: {check}",
        flush=True,
    )
    return {"bench": "takes", "rate": rate, "p95_ms": q[94] * 1000, "check": check, "setup": setup}


def bench_sweep(args: argparse.Namespace) -> dict:
    env = rb.fresh_db("postgres")
    try:
        setup = child(env, "setup", str(args.sellers), str(args.listings // args.sellers), "1", "1")
        r = child(env, "sweep", str(args.listings))
        check = child(env, "check")
    finally:
        rb.drop_db("postgres")
    rate = r["fills"] / r["seconds"]
    print(
        f"sweep: one buy request crossing {setup['listings']} listings: {r['fills']} fills settled in "
        f"{r['seconds']:.2f} s = {rate:,.0f} fills/s (placing the listings took {setup['placing_s']:.1f} s); "
        f"target {TARGET}/s; after: {check}",
        flush=True,
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
    print(f"machine: {rb.machine()}; Python {platform.python_version()}; {date.today()}", flush=True)
    (bench_takes if args.bench == "takes" else bench_sweep)(args)


if __name__ == "__main__":
    main()
