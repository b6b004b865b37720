"""Ingest benchmark: readings per second through the whole ingest path (parse, validate, store, rollups, gap flags)
— and, as `ingest_refresh`, with the post-ingest refresh of plausibility flags and quantification — against a plain bulk insert of the same rows into the same
database, with peak memory, on SQLite and on PostgreSQL. A CSV file takes the array path of ingest (chunks of cells
checked on arrays, the rest row by row); `ingest_rowwise` feeds the same rows one by one, i.e. the row-by-row path.

    .venv/bin/python bench/ingest.py --rows 1000000 --db sqlite
    .venv/bin/python bench/ingest.py --rows 1000000 --db postgres   # LOWCARBON_BENCH_PG_URL, default local
    .venv/bin/python bench/ingest.py --rows 1000000 --db sqlite --modes plain,ingest --memory-rows 200000

--memory-rows N also runs the ingest on an N-row file and compares the two peak RSS (memory independent of file size).
                                                                     # (LOWCARBON_BENCH_PG_DB: database to recreate)

Each measurement runs in its own process on a fresh database so peak RSS belongs to that path alone.
The "plain" loaders read the same CSV with the csv module and insert the rows with one executemany per 5,000 rows
(no validation, no rollups): what a naive loader would do. Django's bulk_create is reported as a second baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import machine
from _report import emit

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = 120
TARGET_RATIO = 0.5
#: "memory independent of file size": peak RSS of the ingest process at --rows within this factor of --memory-rows
MEMORY_TOLERANCE = 1.10


def make_file(path: Path, rows: int) -> None:
    """A CSV of hourly interval readings for SYSTEMS meters (a plausible diurnal profile, 5 kWp systems)."""
    per_meter = rows // SYSTEMS + 1
    start = datetime(2024, 1, 1, 1, tzinfo=UTC)
    written = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["meter_serial", "timestamp", "interval_minutes", "energy", "unit"])
        for m in range(SYSTEMS):
            ts = start
            for i in range(per_meter):
                if written >= rows:
                    return
                hour = (ts.hour + 8) % 24
                energy = max(0.0, 4.0 * (1 - abs(hour - 12.5) / 6.5)) * (
                    0.6 + 0.4 * ((i * 7919 + m) % 13) / 12
                )
                w.writerow([f"BENCH-{m:04d}", ts.strftime("%Y-%m-%dT%H:%M:%SZ"), 60, f"{energy:.4f}", "kWh"])
                ts += timedelta(hours=1)
                written += 1


def setup_db(kind: str) -> dict[str, str]:
    env = dict(os.environ)
    if kind == "sqlite":
        d = tempfile.mkdtemp(prefix="lowcarbon-bench-")
        env["LOWCARBON_VAR_DIR"] = d
        env.pop("LOWCARBON_DATABASE_URL", None)
    else:
        import psycopg

        base = os.environ.get("LOWCARBON_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        name = os.environ.get("LOWCARBON_BENCH_PG_DB", "bench_ingest")  # dropped and created for each run
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        env["LOWCARBON_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
        env["LOWCARBON_VAR_DIR"] = tempfile.mkdtemp(prefix="lowcarbon-bench-")
    subprocess.run([str(ROOT / ".venv/bin/lowcarbon"), "migrate", "-v", "0"], env=env, check=True)
    return env


def teardown_db(kind: str, env: dict[str, str]) -> None:
    """Drop what setup_db made: the PostgreSQL database and the temporary data directory."""
    if kind == "postgres":
        import psycopg

        base = os.environ.get("LOWCARBON_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        name = env["LOWCARBON_DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(env["LOWCARBON_VAR_DIR"], ignore_errors=True)


def child(mode: str, path: str) -> None:
    """Runs inside a fresh process: create the meters, then load the file by `mode`; prints a JSON result."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcarbon.config.settings")
    import django

    django.setup()
    from decimal import Decimal

    from django.db import connection, transaction

    from lowcarbon.accounts.models import User
    from lowcarbon.metering.models import Meter, Reading
    from lowcarbon.pv.models import Community, PVSystem

    owner = User.objects.create_user("bench-owner")
    community = Community.objects.first()
    for m in range(SYSTEMS):
        s = PVSystem.objects.create(
            code=f"PV-B{m:05d}",
            name=f"bench {m}",
            owner_type="household",
            owner_user=owner,
            address="-",
            community=community,
            latitude=Decimal("22.67"),
            longitude=Decimal("113.25"),
            capacity_kwp=Decimal(5),
            tilt_deg=Decimal(20 + m % 10),
            azimuth_deg=Decimal(180),
            grid_connection_date=datetime(2023, 6, 1).date(),
            metering="generation_meter",
        )
        Meter.objects.create(
            serial=f"BENCH-{m:04d}", purpose="pv_generation", subject_kind="pv_system", subject_id=s.id
        )
    ids = dict(Meter.objects.values_list("serial", "id"))
    if mode in ("plain", "plain_copy"):
        make_partitions(path)
    t0 = time.perf_counter()
    if mode in ("ingest", "ingest_refresh", "ingest_rowwise"):
        from lowcarbon.metering.parsers import iter_csv
        from lowcarbon.metering.services import do_ingest

        with open(path, "rb") as fh:
            rows = iter_csv(fh)
            batch = do_ingest(
                # a plain iterator of rows takes the row-by-row path (what every CSV took before the array path)
                (r for r in rows) if mode == "ingest_rowwise" else rows,
                source="cli",
                filename=Path(path).name,
                run_hooks=mode == "ingest_refresh",
            )
        n = batch.rows_accepted
        extra = {"rejected": batch.rows_rejected, "duplicates": batch.rows_duplicate}
    elif mode == "plain":
        ops = connection.ops
        sql = (
            f"INSERT INTO {Reading._meta.db_table} (meter_id, ts, interval_s, energy) VALUES (%s, %s, %s, %s)"
        )
        n = 0
        with open(path, newline="") as fh:
            r = csv.reader(fh)
            next(r)
            buf = []
            for serial, ts, interval, energy, _unit in r:
                dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
                buf.append((ids[serial], ops.adapt_datetimefield_value(dt), int(interval) * 60, energy))
                if len(buf) == 5000:
                    with transaction.atomic(), connection.cursor() as cur:
                        cur.executemany(sql, buf)
                    n += len(buf)
                    buf = []
            if buf:
                with transaction.atomic(), connection.cursor() as cur:
                    cur.executemany(sql, buf)
                n += len(buf)
        extra = {}
    elif mode == "plain_copy":
        # PostgreSQL only: the same rows with COPY, the fastest plain load
        ops = connection.ops
        n = 0
        table = Reading._meta.db_table
        with open(path, newline="") as fh, transaction.atomic(), connection.cursor() as cur:
            r = csv.reader(fh)
            next(r)
            with cur.cursor.copy(f"COPY {table} (meter_id, ts, interval_s, energy) FROM STDIN") as cp:
                for serial, ts, interval, energy, _unit in r:
                    cp.write_row(
                        (
                            ids[serial],
                            datetime.fromisoformat(ts.replace("Z", "+00:00")),
                            int(interval) * 60,
                            energy,
                        )
                    )
                    n += 1
        extra = {}
    elif mode == "bulk_create":
        n = 0
        with open(path, newline="") as fh:
            r = csv.reader(fh)
            next(r)
            buf = []
            for serial, ts, interval, energy, _unit in r:
                buf.append(
                    Reading(
                        meter_id=ids[serial],
                        ts=datetime.fromisoformat(ts.replace("Z", "+00:00")),
                        interval_s=int(interval) * 60,
                        energy=Decimal(energy),
                    )
                )
                if len(buf) == 5000:
                    Reading.objects.bulk_create(buf)
                    n += len(buf)
                    buf = []
            if buf:
                Reading.objects.bulk_create(buf)
                n += len(buf)
        extra = {}
    elif mode == "reimport":
        from lowcarbon.metering.parsers import iter_csv
        from lowcarbon.metering.services import do_ingest

        with open(path, "rb") as fh:
            do_ingest(iter_csv(fh), source="cli", run_hooks=False)
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            batch = do_ingest(iter_csv(fh), source="cli")
        n = batch.rows_duplicate
        extra = {"accepted_on_reimport": batch.rows_accepted}
    else:
        raise SystemExit(f"unknown mode {mode}")
    secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"mode": mode, "rows": n, "seconds": secs, "rate": n / secs, "peak_rss_mb": rss_mb, **extra}
        )
    )


def make_partitions(path: str) -> None:
    """The plain loaders write around the ORM, so they create the monthly partitions of the readings table first
    (PostgreSQL), untimed, as an operator would ahead of a load (`lowcarbon partitions --ensure-ahead`)."""
    try:
        from lowcarbon.metering.partitions import ensure_partitions
    except ImportError:  # a platform without partitioned readings
        return
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        next(r)
        months = {row[1][:7] for row in r}
    ensure_partitions(datetime.strptime(m + "-15", "%Y-%m-%d").replace(tzinfo=UTC) for m in sorted(months))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--modes", default="plain,bulk_create,ingest,ingest_refresh,reimport")
    ap.add_argument(
        "--memory-rows",
        type=int,
        default=0,
        help="also run the ingest mode on a file of this many rows and compare its peak RSS with --rows' "
        "(memory independent of file size)",
    )
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="lowcarbon-bench-data-"))
    try:
        data = work / f"readings-{args.rows}.csv"
        make_file(data, args.rows)
        size_mb = data.stat().st_size / 2**20
        results = {mode: run_mode(args.db, mode, data) for mode in args.modes.split(",")}
        small = None
        if args.memory_rows and "ingest" in results:
            small_data = work / f"readings-{args.memory_rows}.csv"
            make_file(small_data, args.memory_rows)
            small = run_mode(args.db, "ingest", small_data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    db_name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[args.db]
    if "ingest" in results and "plain" in results:
        ratio = results["ingest"]["rate"] / results["plain"]["rate"]
        print(f"ingest / plain = {ratio:.2f} (target ≥ 0.50)")
    for base, label in (("plain_copy", "COPY"), ("plain", "plain executemany")):
        if "ingest" in results and base in results:  # the fastest plain load present is the baseline
            if base == "plain_copy":
                print(f"ingest / plain_copy = {results['ingest']['rate'] / results[base]['rate']:.2f}")
            ratio = results["ingest"]["rate"] / results[base]["rate"]
            emit(
                "ingest_ratio",
                ratio,
                f"× {label}",
                f"≥ {TARGET_RATIO} × plain bulk insert",
                ratio >= TARGET_RATIO,
                what=f"readings ingest (whole path) vs plain bulk insert ({label}), {args.rows:,} rows, {db_name}",
                detail=f"ingest {results['ingest']['rate']:,.0f} rows/s, {label} {results[base]['rate']:,.0f} rows/s",
            )
            break
    if "ingest" in results:
        r = results["ingest"]
        others = ", ".join(f"{m} {v['peak_rss_mb']:.0f} MB" for m, v in results.items() if m != "ingest")
        if small is not None:
            growth = r["peak_rss_mb"] / small["peak_rss_mb"]
            emit(
                "ingest_peak_rss",
                r["peak_rss_mb"],
                "MB",
                f"independent of file size (≤ {MEMORY_TOLERANCE:.2f} × the smaller file's)",
                growth <= MEMORY_TOLERANCE,
                what=f"peak RSS of the ingest process, {args.rows:,} rows vs {args.memory_rows:,} rows, {db_name}",
                detail=f"{small['peak_rss_mb']:.0f} MB at {args.memory_rows:,} rows (× {growth:.2f})"
                + (f"; baselines: {others}" if others else ""),
            )
        else:
            emit(
                "ingest_peak_rss",
                r["peak_rss_mb"],
                "MB",
                None,
                None,
                what=f"peak RSS of the ingest process, {args.rows:,} rows, {db_name}",
                detail=f"baselines: {others}" if others else None,
            )
    print(f"machine: {machine()}; date: {datetime.now().date().isoformat()}; file {size_mb:.0f} MB")


def run_mode(db: str, mode: str, data: Path) -> dict:
    """One measurement: a fresh database, the child process loading `data` by `mode`, the database removed."""
    env = setup_db(db)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(data)],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode:
            sys.stderr.write(out.stdout[-2000:] + out.stderr[-4000:])
            out.check_returncode()
    finally:
        teardown_db(db, env)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{db:8} {mode:12} {r['rows']:>9,} rows {r['seconds']:8.1f} s {r['rate']:>10,.0f} rows/s "
        f"peak RSS {r['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return r


if __name__ == "__main__":
    main()
