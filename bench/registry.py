"""Registry ledger benchmarks, each on a fresh database (PostgreSQL `bench_registry`, or LOWCARBON_BENCH_PG_DB,
created and dropped; SQLite in a temporary LOWCARBON_VAR_DIR), migrated with `lowcarbon migrate`:

    .venv/bin/python bench/registry.py transfers --threads 16 --seconds 30 --runs 3  # PostgreSQL only
    .venv/bin/python bench/registry.py verify --db postgres --entries 1000000
    .venv/bin/python bench/registry.py verify --db sqlite --entries 1000000
    .venv/bin/python bench/registry.py issuance --db postgres --systems 10000
    .venv/bin/python bench/registry.py issuance --db sqlite --systems 10000

transfers  client threads, each with its own database connection, call `ledger.do_transfer` for 1–5 units between
           random accounts (the sender's owner acting) for a fixed time; reports transfers per second and the
           p50/p95/p99 latency of a call. `--procs P` spreads the threads over P processes (one GIL each).
verify     bulk-loads N valid synthetic journal entries (a realistic transfer payload each), then times
           `lowcarbon ledger verify` (and `--chain-only`, and the streaming recomputation in Python); finally alters
           one payload in the middle and checks the command names that entry.
issuance   writes N approved single-system applications (N owners, systems and accounts), then times
           `lowcarbon issue --all-approved --issuer …` (the command door: issuance, carry-forward, journal,
           the application's timeline and the owner's notification), and the bare `ledger.do_issue_units` loop
           on a second fresh database.

Set LOWCARBON_BENCH_PG_URL for another server (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import time
from datetime import UTC, date, datetime, timedelta

import _common
from _common import LOWCARBON, drop_db, latency_summary, machine, pg_db, setup_django
from _report import emit

PG_DB = pg_db("bench_registry")
PROJECT_ORIGIN_RATE = 150  # transfers/s published by Project Origin (domain.md §9.1 comparison)
TRANSFER_TARGET_RATE = 1500
TRANSFER_TARGET_P95_MS = 50.0
VERIFY_TARGET_S = 3.0
ISSUANCE_TARGET_S = 10.0


def fresh_db(kind: str) -> dict[str, str]:
    """A new empty, migrated database (PostgreSQL PG_DB or a temporary SQLite); the environment pointing at it."""
    return _common.fresh_db(kind, PG_DB)


def child(env: dict[str, str], *args: str) -> dict:
    """Run this script's child step in a fresh process; returns the JSON it prints last."""
    return _common.child(__file__, env, *args)


# ---------------------------------------------------------------------------------------------------------------
# data


def make_population(n: int, units: int, *, issue: bool) -> list[int]:
    """n owners, each with a PV system, an account and an approved single-system application of `units` units
    (issued when `issue`); one registry administrator `bench-admin`. Returns the application ids."""
    from decimal import Decimal

    from django.db import transaction

    from lowcarbon.accounts.models import RoleGrant, User
    from lowcarbon.methodology.models import GridFactor, Methodology
    from lowcarbon.pv.models import Community, PVSystem
    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import Application, ApplicationSystem, RegistryAccount

    admin = User.objects.create_user("bench-admin", real_name="Bench administrator")
    RoleGrant.objects.create(user=admin, role="registry_admin")
    preparer = User.objects.create_user("bench-preparer")
    reviewer = User.objects.create_user("bench-reviewer")
    community = Community.objects.first()
    methodology = Methodology.objects.get(code="GD-PV-2022")
    factor = GridFactor.objects.get(code="MEE2019-SOUTH-CM")
    with transaction.atomic():
        owners = User.objects.bulk_create(
            [User(username=f"bench-owner-{i:06d}", password="!", real_name=f"户主{i}") for i in range(n)]
        )
        accounts = RegistryAccount.objects.bulk_create(
            [RegistryAccount(number=f"XL-U{u.pk:06d}", owner_user=u) for u in owners]
        )
        systems = PVSystem.objects.bulk_create(
            [
                PVSystem(
                    code=f"PV-B{i:06d}",
                    name=f"bench {i}",
                    owner_type="household",
                    owner_user=u,
                    address="-",
                    community=community,
                    latitude=Decimal("22.67"),
                    longitude=Decimal("113.25"),
                    capacity_kwp=Decimal(5),
                    tilt_deg=Decimal(20),
                    azimuth_deg=Decimal(180),
                    grid_connection_date=date(2023, 6, 1),
                    metering="generation_meter",
                )
                for i, u in enumerate(owners)
            ]
        )
        apps = Application.objects.bulk_create(
            [
                Application(
                    code=f"AP-B{i:06d}",
                    kind="single",
                    state="approved",
                    applicant=u,
                    period_start=date(2025, 1, 1),
                    period_end=date(2025, 12, 1),
                    methodology=methodology,
                    factor=factor,
                    vintage=2025,
                    claimed_kg=Decimal(units * 1000 + 321),
                    units=units,
                    carry_out_kg=Decimal(321),
                    reviewer=reviewer if i % 2 else preparer,
                )
                for i, u in enumerate(owners)
            ]
        )
        ApplicationSystem.objects.bulk_create(
            [
                ApplicationSystem(
                    application=a,
                    system=s,
                    er_kg=Decimal(units * 1000 + 321),
                    units=units,
                    carry_out_kg=Decimal(321),
                    credit_account=acc,
                )
                for a, s, acc in zip(apps, systems, accounts, strict=True)
            ]
        )
    if issue:
        for a in apps:
            ledger.do_issue_units(a, issuer=admin)
    return [a.pk for a in apps]


# ---------------------------------------------------------------------------------------------------------------
# transfers


def child_transfer_setup(accounts: int, units: int) -> dict:
    setup_django()
    make_population(accounts, units, issue=True)
    return {"accounts": accounts, "units": units}


def child_transfer_run(threads: int, seconds: float, seed: int, async_commit: bool) -> dict:
    """Client threads of one process; waits for the start time on stdin so that all processes start together."""
    setup_django()
    from django.db.backends.signals import connection_created

    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import RegistryAccount

    if async_commit:

        def no_flush_wait(sender, connection, **kwargs):  # noqa: ANN001 - signal receiver
            with connection.cursor() as cur:
                cur.execute("SET synchronous_commit TO off")

        connection_created.connect(no_flush_wait)
    accounts = list(RegistryAccount.objects.select_related("owner_user").order_by("pk"))

    def make_op(k: int):  # noqa: ANN202 - one client thread's call
        def prepare(rng: random.Random):  # noqa: ANN202
            a, b = rng.sample(accounts, 2)
            q = rng.randint(1, 5)
            return lambda: ledger.do_transfer(from_account=a, to_account=b, quantity=q, actor=a.owner_user)

        return prepare

    before = (ledger._TRANSFERS.batches, ledger._TRANSFERS.combined)
    out = _common.client_threads(threads, seconds, seed, make_op)
    out["counters"] = {
        "transactions": ledger._TRANSFERS.batches - before[0],
        "combined": ledger._TRANSFERS.combined - before[1],
    }
    return out


def checks_text(check: dict) -> str:
    """'checks held' or what did not hold, from child_ledger_check (and the market's additions)."""
    bad = [
        k
        for k, v in check.items()
        if (k in ("conserved", "journal_ok") and not v)
        or (k in ("overlaps", "negative_accounts", "oversold_listings", "wrong_reservations") and v)
    ]
    return "checks held" if not bad else "CHECKS FAILED: " + ", ".join(bad)


def transfer_run(args: argparse.Namespace) -> dict:
    """One measured run on a fresh database; prints its line and returns its row."""
    env = fresh_db("postgres")
    try:
        child(env, "transfer-setup", str(args.accounts), str(args.units))
        lat, refused, errors, counters = _common.run_clients(
            __file__,
            env,
            args.threads,
            args.procs,
            lambda i, n: [
                "transfer-run",
                str(n),
                str(args.seconds),
                str(i),
                "1" if args.async_commit else "0",
            ],
        )
        check = child(env, "ledger-check")
    finally:
        drop_db(env)
    summary = latency_summary(lat, args.seconds)
    row = {
        "bench": "transfers",
        "db": "postgres",
        "threads": args.threads,
        "procs": args.procs,
        "async_commit": args.async_commit,
        "accounts": args.accounts,
        "seconds": args.seconds,
        "transfers": len(lat),
        **summary,
        "refused": refused,
        "errors": errors,
        "check": check,
        "transactions": counters.get("transactions", 0),
        "per_transaction": counters.get("combined", 0) / max(counters.get("transactions", 0), 1),
    }
    print(
        f"transfers: {row['rate']:,.0f}/s over {args.seconds:.0f} s ({len(lat):,} transfers, {args.threads} threads "
        f"in {args.procs} process(es), {args.accounts} accounts); latency p50 {row['p50_ms']:.1f} ms, "
        f"p95 {row['p95_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms; {row['per_transaction']:.1f} transfers per "
        f"transaction; refused {refused}; errors {errors}; "
        f"Project Origin 150/s → ×{row['rate'] / PROJECT_ORIGIN_RATE:.1f}; after: {check}",
        flush=True,
    )
    return row


def bench_transfers(args: argparse.Namespace) -> list[dict]:
    """`--runs` runs, each on its own fresh database: the rate reported is the median run's (this class of
    machine varies by about ±10 % from one run to the next), the p95 the worst run's."""
    rows = [transfer_run(args) for _ in range(max(args.runs, 1))]
    by_rate = sorted(rows, key=lambda r: r["rate"])
    median = by_rate[len(by_rate) // 2]
    worst_p95 = max(rows, key=lambda r: r["p95_ms"])
    refused = sum(sum(r["refused"].values()) for r in rows)
    errors = sum(len(r["errors"]) for r in rows)
    bad = [checks_text(r["check"]) for r in rows if checks_text(r["check"]) != "checks held"]
    setting = f"{args.threads} client threads in {args.procs} process(es)" + (
        ", synchronous_commit off" if args.async_commit else ""
    )
    runs = " / ".join(f"{r['rate']:,.0f}" for r in rows)
    p95s = " / ".join(f"{r['p95_ms']:.1f}" for r in rows)
    health = f"{refused} refused, {errors} errors; " + ("; ".join(bad) if bad else "checks held")
    emit(
        "transfers_rate",
        median["rate"],
        "/s",
        f"≥ {TRANSFER_TARGET_RATE:,} /s",
        median["rate"] >= TRANSFER_TARGET_RATE,
        what=f"registry transfers per second, {setting}, {args.accounts} accounts, PostgreSQL",
        detail=f"median of {len(rows)} runs of {args.seconds:g} s ({runs} /s), {median['transfers']:,} transfers "
        f"and {median['per_transaction']:.1f} per transaction in the median run; "
        f"×{median['rate'] / PROJECT_ORIGIN_RATE:.1f} Project Origin's 150 /s; {health}",
    )
    emit(
        "transfers_p95",
        worst_p95["p95_ms"],
        "ms",
        f"< {TRANSFER_TARGET_P95_MS:.0f} ms",
        worst_p95["p95_ms"] < TRANSFER_TARGET_P95_MS,
        what=f"registry transfer latency p95, {setting}, PostgreSQL",
        detail=f"worst of {len(rows)} runs ({p95s} ms); "
        f"p50 {worst_p95['p50_ms']:.1f} ms, p99 {worst_p95['p99_ms']:.1f} ms in that run",
    )
    return rows


def child_ledger_check() -> dict:
    """Conservation and chain after a run."""
    setup_django()
    from lowcarbon.registry import journal, ledger
    from lowcarbon.registry.domain.serials import overlapping
    from lowcarbon.registry.models import RegistryAccount, SerialBlock

    totals = ledger.supply_totals()
    live = list(SerialBlock.objects.exclude(state="split").values_list("series", "start", "end"))
    negative = sum(1 for a in RegistryAccount.objects.all() if ledger.balance(a) < 0)
    v = journal.verify_journal()
    return {
        "conserved": totals["issued"] == totals["held"] + totals["retired"] + totals["cancelled"],
        "overlaps": len(overlapping(live)),
        "negative_accounts": negative,
        "journal_ok": v.ok,
        "journal_entries": v.count,
    }


# ---------------------------------------------------------------------------------------------------------------
# verify


def child_verify_fill(entries: int) -> dict:
    """Write `entries` valid chained entries straight into the journal table (COPY on PostgreSQL)."""
    setup_django()
    from django.db import connection, transaction

    from lowcarbon.registry.domain.journal import GENESIS, canonical_json, entry_content, entry_hash, iso_utc
    from lowcarbon.registry.models import JournalEntry

    table = JournalEntry._meta.db_table
    cols = "(seq, prev_hash, hash, canonical)"  # the database generates time, kind, actor and payload from the text
    t0 = time.perf_counter()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS
    rng = random.Random(7)

    def rows():
        nonlocal prev
        for seq in range(1, entries + 1):
            at = start + timedelta(milliseconds=seq * 37)
            a, b = rng.randrange(1, 5000), rng.randrange(1, 5000)
            q = rng.randint(1, 5)
            s = rng.randrange(1, 900) * 100
            series = f"PHCER-GD-GD-PV-2022-PV-B{a:06d}-2025"
            payload = {
                "ref": f"TR-2026-{seq:06d}",
                "number": f"TR-2026-{seq:06d}",
                "from": f"XL-U{a:06d}",
                "to": f"XL-U{b:06d}",
                "quantity": q,
                "blocks": [
                    {
                        "block": seq * 2,
                        "serial": f"{series}-{s:08d}-{s + q - 1:08d}",
                        "quantity": q,
                        "split_from": f"{series}-{s:08d}-{s + 99:08d}",
                        "kept": f"{series}-{s + q:08d}-{s + 99:08d}",
                    }
                ],
            }
            ptext = canonical_json(payload)
            at_text = iso_utc(at)
            content = entry_content(seq, at_text, "transfer", a, ptext)
            h = entry_hash(prev, content)
            yield seq, prev, h, content
            prev = h

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} {cols} FROM STDIN") as cp:
                for r in rows():
                    cp.write_row(r)
        else:
            sql = f"INSERT INTO {table} {cols} VALUES (?, ?, ?, ?)"
            raw = connection.connection
            batch = []
            for row in rows():
                batch.append(row)
                if len(batch) == 20000:
                    raw.executemany(sql, batch)
                    batch = []
            if batch:
                raw.executemany(sql, batch)
    with connection.cursor() as cur:
        cur.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")
    size = JournalEntry.objects.count()
    return {"entries": size, "fill_seconds": time.perf_counter() - t0}


def child_verify_stream() -> dict:
    setup_django()
    from lowcarbon.registry import journal

    t0 = time.perf_counter()
    r = journal.verify_journal(method="stream")
    return {"ok": r.ok, "count": r.count, "seconds": time.perf_counter() - t0}


def child_tamper(seq: int) -> dict:
    """Alter one entry's payload column the only way it can be: make the generated columns plain, then update."""
    setup_django()
    import sys

    from django.db import connection

    from lowcarbon.registry.models import JournalEntry

    sys.path.insert(0, str(_common.ROOT))
    from tests.registry.tamper import as_json, make_journal_fields_plain, payload_update

    e = JournalEntry.objects.get(seq=seq)
    payload = {**e.payload, "quantity": e.payload.get("quantity", 0) + 1000}
    with connection.cursor() as cur:
        make_journal_fields_plain(connection.vendor, cur.execute)
        cur.execute(payload_update(connection.vendor), [as_json(payload), seq])
    return {"tampered": seq}


def timed_command(env: dict[str, str], *argv: str) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = subprocess.run([LOWCARBON, *argv], env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, p.returncode, (p.stdout + p.stderr).strip()


def bench_verify(args: argparse.Namespace) -> list[dict]:
    env = fresh_db(args.db)
    rows = []
    try:
        fill = child(env, "verify-fill", str(args.entries))
        print(
            f"verify/{args.db}: {fill['entries']:,} entries loaded in {fill['fill_seconds']:.1f} s",
            flush=True,
        )
        for argv in (["ledger", "verify"], ["ledger", "verify", "--chain-only"]):
            runs = [timed_command(env, *argv) for _ in range(args.runs)]
            for secs, rc, out in runs:
                print(f"  {' '.join(argv)}: {secs:.2f} s wall, exit {rc}: {out}", flush=True)
            walls = sorted(r[0] for r in runs)
            rows.append(
                {
                    "bench": "verify",
                    "db": args.db,
                    "command": "lowcarbon " + " ".join(argv),
                    "entries": fill["entries"],
                    "wall_s": walls,
                    "inside_s": [_inside(r[2]) for r in runs],
                    "ok": all(r[1] == 0 for r in runs),
                }
            )
        stream = child(env, "verify-stream")
        print(f"  streaming recomputation in Python: {stream}", flush=True)
        rows.append({"bench": "verify-stream", "db": args.db, **stream})
        middle = fill["entries"] // 2
        child(env, "tamper", str(middle))
        secs, rc, out = timed_command(env, "ledger", "verify")
        print(f"  after altering entry {middle}: {secs:.2f} s, exit {rc}: {out}", flush=True)
        rows.append({"bench": "verify-tampered", "db": args.db, "wall_s": secs, "exit": rc, "output": out})
    finally:
        drop_db(env)
    name = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[args.db]
    for row, label, key in (
        (rows[0], "full check (hashes, links, sequence and fields)", "verify"),
        (rows[1], "--chain-only (hashes, links, sequence)", "verify_chain_only"),
    ):
        inside = [x for x in row["inside_s"] if x is not None]
        value = (
            statistics.median(inside)
            if len(inside) == len(row["inside_s"])
            else statistics.median(row["wall_s"])
        )
        emit(
            key,
            value,
            "s",
            f"≤ {VERIFY_TARGET_S:g} s",
            value <= VERIFY_TARGET_S and row["ok"],
            what=f"`ledger verify` {label} over {row['entries']:,} journal entries, {name}",
            detail=f"median of {args.runs} runs in the command"
            + (" (wall: no time in the output)" if len(inside) != len(row["inside_s"]) else "")
            + f": {' / '.join(f'{x:.2f}' for x in (inside or row['wall_s']))} s; "
            f"{min(row['wall_s']):.1f}–{max(row['wall_s']):.1f} s wall with interpreter start-up"
            + ("" if row["ok"] else "; a run did not exit 0"),
        )
    emit(
        "verify_stream",
        stream["seconds"],
        "s",
        None,
        None,
        what=f"streaming recomputation of the same chain in Python (reference), {name}",
        detail=f"{stream['count']:,} entries, ok={stream['ok']}",
    )
    named = rc == 1 and str(middle) in out
    emit(
        "verify_tampered",
        secs,
        "s",
        "names the altered entry",
        named,
        what=f"`ledger verify` after altering the payload of entry {middle:,}, {name}",
        detail=f"exit {rc}" + ("; names the entry" if named else f"; output: {out[:120]}"),
    )
    return rows


def _inside(out: str) -> float | None:
    import re

    m = re.search(r"([0-9]+\.[0-9]+) ?(?:s\b|秒)", out)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------------------------
# issuance


def child_issuance_prepare(systems: int) -> dict:
    setup_django()
    t0 = time.perf_counter()
    make_population(systems, 3, issue=False)
    return {"systems": systems, "prepare_seconds": time.perf_counter() - t0}


def child_issuance_command(batch_size: int) -> dict:
    """The command door in-process (no interpreter start-up): `lowcarbon issue --all-approved`."""
    setup_django()
    import io

    from django.core.management import call_command

    out = io.StringIO()
    t0 = time.perf_counter()
    call_command(
        "issue", "--all-approved", "--issuer", "bench-admin", "--batch-size", str(batch_size), stdout=out
    )
    return {"seconds": time.perf_counter() - t0, "summary": out.getvalue().strip().splitlines()[-1]}


def child_issuance_service() -> dict:
    """The bare service loop: one transaction per application."""
    setup_django()
    from lowcarbon.accounts.models import User
    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import Application

    admin = User.objects.get(username="bench-admin")
    apps = list(Application.objects.filter(state="approved").order_by("pk"))
    t0 = time.perf_counter()
    n = 0
    for app in apps:
        n += len(ledger.do_issue_units(app, issuer=admin))
    return {"applications": len(apps), "blocks": n, "seconds": time.perf_counter() - t0}


def bench_issuance(args: argparse.Namespace) -> list[dict]:
    rows = []
    env = fresh_db(args.db)
    try:
        prep = child(env, "issuance-prepare", str(args.systems))
        print(
            f"issuance/{args.db}: {args.systems:,} approved applications written in {prep['prepare_seconds']:.1f} s"
        )
        argv = ["issue", "--all-approved", "--issuer", "bench-admin", "--batch-size", str(args.batch_size)]
        secs, rc, out = timed_command(env, *argv)
        tail = out.splitlines()[-1] if out else ""
        print(f"  lowcarbon {' '.join(argv)}: {secs:.2f} s wall, exit {rc}: {tail}", flush=True)
        check = child(env, "ledger-check")
        print(f"  after: {check}", flush=True)
        rows.append(
            {
                "bench": "issuance-command",
                "db": args.db,
                "command": "lowcarbon " + " ".join(argv),
                "systems": args.systems,
                "wall_s": secs,
                "exit": rc,
                "summary": tail,
                "check": check,
            }
        )
    finally:
        drop_db(env)
    env = fresh_db(args.db)
    try:
        child(env, "issuance-prepare", str(args.systems))
        r = child(env, "issuance-command", str(args.batch_size))
        print(f"  the same command in-process (no interpreter start-up): {r}", flush=True)
        rows.append({"bench": "issuance-command-inprocess", "db": args.db, "systems": args.systems, **r})
    finally:
        drop_db(env)
    env = fresh_db(args.db)
    try:
        child(env, "issuance-prepare", str(args.systems))
        r = child(env, "issuance-service")
        print(f"  ledger.do_issue_units loop (one transaction each): {r}", flush=True)
        rows.append({"bench": "issuance-service", "db": args.db, "systems": args.systems, **r})
    finally:
        drop_db(env)
    name = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[args.db]
    command, inprocess, service = rows
    emit(
        "issuance_command",
        command["wall_s"],
        "s",
        f"≤ {ISSUANCE_TARGET_S:g} s",
        command["wall_s"] <= ISSUANCE_TARGET_S and command["exit"] == 0,
        what=f"monthly issuance of {args.systems:,} approved single-system applications, "
        f"`lowcarbon issue --all-approved --batch-size {args.batch_size}`, {name}",
        detail=f"wall with interpreter start-up ({inprocess['seconds']:.2f} s in-process); exit {command['exit']}; "
        f"{checks_text(command['check'])}",
    )
    emit(
        "issuance_service_loop",
        service["seconds"],
        "s",
        None,
        None,
        what=f"the same as a loop of `ledger.do_issue_units`, one transaction each (reference), {name}",
        detail=f"{service['applications']:,} applications, {service['blocks']:,} blocks",
    )
    return rows


# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", nargs="?", choices=["transfers", "verify", "issuance"])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument(
        "--async-commit",
        action="store_true",
        help="transfers: SET synchronous_commit TO off on the clients' connections (shows what the WAL flush "
        "held under the journal lock costs; not a durable setting)",
    )
    ap.add_argument("--accounts", type=int, default=400)
    ap.add_argument("--units", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--child", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.child:
        step, *rest = args.child
        steps = {
            "transfer-setup": lambda: child_transfer_setup(int(rest[0]), int(rest[1])),
            "transfer-run": lambda: child_transfer_run(
                int(rest[0]), float(rest[1]), int(rest[2]), rest[3] == "1"
            ),
            "ledger-check": child_ledger_check,
            "verify-fill": lambda: child_verify_fill(int(rest[0])),
            "verify-stream": child_verify_stream,
            "tamper": lambda: child_tamper(int(rest[0])),
            "issuance-prepare": lambda: child_issuance_prepare(int(rest[0])),
            "issuance-service": child_issuance_service,
            "issuance-command": lambda: child_issuance_command(int(rest[0])),
        }
        print(json.dumps(steps[step]()))
        return
    if args.bench is None:
        ap.error("name a benchmark: transfers, verify or issuance")
    if args.bench == "transfers":
        rows = bench_transfers(args)
    elif args.bench == "verify":
        rows = bench_verify(args)
    else:
        rows = bench_issuance(args)
    print(f"machine: {machine()}; {platform.python_version()}; date: {date.today().isoformat()}")
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
