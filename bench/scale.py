"""Scale simulation on PostgreSQL: N PV systems (default 2,000) × a year of 15-minute readings, loaded through the
platform's own ingest path, then the post-ingest refresh, a rebuild check of the rollups, storage per row and
dashboard latency at that volume. The figures feed docs/scaling.md.

    .venv/bin/python bench/scale.py                       # 2,000 systems × 12 months (about 70 M readings)
    .venv/bin/python bench/scale.py --systems 50 --months 1   # a smoke run
    .venv/bin/python bench/scale.py --write               # also write bench/results/scale.md

LOWCARBON_BENCH_PG_URL names the server (default postgresql://postgres@127.0.0.1:5432/postgres); the run creates and
keeps the database `bench_scale` (LOWCARBON_BENCH_PG_DB overrides) (dropped at the start of the next run) so the data can be inspected afterwards.

What is measured, in one process against a fresh database:
1. ingest: each month, one CSV file per group of 500 meters (what a utility or aggregator would deliver) goes
   through `metering.services.do_ingest` — parse, array checks, COPY, daily and monthly rollups, gap flags — without
   the post-ingest hooks; rows/s over the whole year. Generating the CSV text is not timed.
2. refresh: the post-ingest hooks (plausibility flags and monthly quantification) over every system and month, as
   `run_ingest_hooks` runs them after each file; seconds in total and per system-month.
3. rollup rebuild: the daily rollups recomputed from the raw readings by one GROUP BY (what a repair would run),
   timed, and compared with the rollups maintained at ingest (they must be equal).
4. storage: table plus index bytes per reading of the partitioned readings table, and of the rollups.
5. dashboards: the public dashboard's figures computed afresh (cold), and the pages served through Django's test
   client (warm: /dashboard/, an owner's /my/, the administrator's /my/): p50/p95 of 20 requests each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _common import machine

ROOT = Path(__file__).resolve().parent.parent
GROUP = 500  # meters per delivered file
DB = os.environ.get("LOWCARBON_BENCH_PG_DB", "bench_scale")
YEAR = 2025
TARGET_P95_MS = 100.0  # the dashboards' target (bench/dashboard.py), here at the simulated volume


def pg_urls() -> tuple[str, str]:
    base = os.environ.get("LOWCARBON_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return base, base.rsplit("/", 1)[0] + "/" + DB


def fresh_database() -> dict[str, str]:
    import psycopg

    base, url = pg_urls()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    env = dict(os.environ)
    env["LOWCARBON_DATABASE_URL"] = url
    env["LOWCARBON_VAR_DIR"] = tempfile.mkdtemp(prefix="lowcarbon-scale-")
    subprocess.run([str(ROOT / ".venv/bin/lowcarbon"), "migrate", "-v", "0"], env=env, check=True)
    return env


def month_starts(months: int) -> list[datetime]:
    return [datetime(YEAR, m, 1, tzinfo=UTC) for m in range(1, months + 1)]


def write_month_file(path: Path, serials: list[str], capacities: list[float], start: datetime) -> int:
    """15-minute interval readings (timestamps at the end of each interval, UTC) for the meters of one file over one
    calendar month: a clear-sky-like bell between local 06:00 and 18:30 scaled by each day's weather, a little
    noise per system, zero at night (meters report zeros at night too)."""
    import numpy as np

    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    n = int((end - start).total_seconds() // 900)
    stamps = [(start + timedelta(minutes=15 * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    local_h = np.array([((i + 1) * 0.25 + 8) % 24 for i in range(n)]) - 0.125  # mid-interval, Asia/Shanghai
    bell = np.clip(np.sin(np.pi * (local_h - 6.0) / 12.5), 0, None) ** 1.3  # 0 outside 06:00–18:30
    season = 0.8 + 0.2 * math.sin(math.pi * (start.month - 3) / 6)
    rng = np.random.default_rng(start.month)
    days = n // 96 + 1
    weather = rng.uniform(0.25, 1.0, size=days)  # a day's share of clear-sky output
    day_idx = np.arange(n) // 96
    rows = 0
    with path.open("w") as fh:
        fh.write("meter_serial,timestamp,interval_minutes,energy,unit\n")
        for serial, kwp in zip(serials, capacities, strict=True):
            noise = rng.uniform(0.9, 1.0, size=n)
            kwh = kwp * 0.25 * 0.85 * season * bell * weather[day_idx] * noise
            fh.write(
                "".join(
                    f"{serial},{ts},15,{e:.4f},kWh\n"
                    for ts, e in zip(stamps, kwh.round(4).tolist(), strict=True)
                )
            )
            rows += n
    return rows


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def child(systems: int, months: int) -> dict[str, object]:
    """Runs inside the fresh database's environment."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcarbon.config.settings")
    import django

    django.setup()
    from decimal import Decimal

    from django.db import connection
    from django.test import Client

    from lowcarbon.accounts.models import RoleGrant, User
    from lowcarbon.metering.models import Meter
    from lowcarbon.metering.parsers import iter_csv
    from lowcarbon.metering.services import do_ingest, run_ingest_hooks
    from lowcarbon.pv.models import Community, PVSystem

    out: dict[str, object] = {"systems": systems, "months": months}
    communities = list(Community.objects.order_by("code"))
    users = User.objects.bulk_create(
        [User(username=f"scale{i:06d}", real_name=f"户主{i}", password="!") for i in range(systems)]
    )
    RoleGrant.objects.bulk_create([RoleGrant(user=u, role="owner_household") for u in users])
    capacities = [round(3 + (i * 7919 % 170) / 10, 1) for i in range(systems)]  # 3–20 kWp
    pv = PVSystem.objects.bulk_create(
        [
            PVSystem(
                code=f"PV-S{i:06d}",
                name=f"屋顶光伏{i}",
                owner_type="household",
                owner_user=u,
                address="小榄镇",
                community=communities[i % len(communities)],
                latitude=Decimal("22.6") + Decimal(i % 97) / 1000,
                longitude=Decimal("113.2") + Decimal(i % 89) / 1000,
                capacity_kwp=Decimal(str(capacities[i])),
                tilt_deg=Decimal(20),
                azimuth_deg=Decimal(180),
                grid_connection_date=date(YEAR - 1, 6, 1),
                metering="generation_meter",
            )
            for i, u in enumerate(users)
        ]
    )
    Meter.objects.bulk_create(
        [
            Meter(
                serial=f"SC{i:08d}",
                purpose="pv_generation",
                subject_kind="pv_system",
                subject_id=s.pk,
                interval_minutes=15,
            )
            for i, s in enumerate(pv)
        ]
    )
    admin = User.objects.create_superuser("scale-admin", password="Scale-admin-2026", real_name="管理员")
    RoleGrant.objects.create(user=admin, role="registry_admin")

    serials = [f"SC{i:08d}" for i in range(systems)]
    tmp = Path(tempfile.mkdtemp(prefix="lowcarbon-scale-csv-"))
    ingest_s = 0.0
    rows_total = 0
    touched: dict[int, set[date]] = {}
    per_file: list[float] = []
    for start in month_starts(months):
        for g in range(0, systems, GROUP):
            path = tmp / f"{start:%Y%m}-{g:06d}.csv"
            write_month_file(path, serials[g : g + GROUP], capacities[g : g + GROUP], start)
            t0 = time.perf_counter()
            with path.open("rb") as fh:
                batch = do_ingest(iter_csv(fh), source="cli", filename=path.name, run_hooks=False)
            dt = time.perf_counter() - t0
            ingest_s += dt
            assert batch.status == "done", batch.error
            assert batch.rows_rejected == 0, batch.rejected_by_reason
            rows_total += batch.rows_accepted
            per_file.append(batch.rows_accepted / dt)
            path.unlink()
            print(f"  {path.name}: {batch.rows_accepted:,} rows in {dt:.1f} s", flush=True)
    meter_ids = list(Meter.objects.values_list("id", flat=True))
    for mid in meter_ids:
        touched[mid] = {datetime(YEAR, m, 1).date() for m in range(1, months + 1)}
    out.update(rows=rows_total, ingest_s=round(ingest_s, 1), ingest_rows_per_s=round(rows_total / ingest_s))
    out["ingest_file_rows_per_s_min_max"] = [round(min(per_file)), round(max(per_file))]

    t0 = time.perf_counter()
    run_ingest_hooks(touched)
    refresh = time.perf_counter() - t0
    out.update(
        refresh_s=round(refresh, 1), refresh_ms_per_system_month=round(1000 * refresh / (systems * months), 2)
    )

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        t0 = time.perf_counter()
        cur.execute(
            "CREATE TEMP TABLE rebuilt AS SELECT meter_id, "
            "(ts - make_interval(secs => interval_s) + interval '8 hours')::date AS day, "
            "sum(energy) AS energy, count(*) AS n FROM metering_reading WHERE interval_s > 0 GROUP BY 1, 2"
        )
        out["rollup_rebuild_s"] = round(time.perf_counter() - t0, 1)
        cur.execute(
            "SELECT count(*) FROM rebuilt r FULL JOIN metering_dailyrollup d USING (meter_id, day) "
            "WHERE r.energy IS DISTINCT FROM d.energy OR r.n IS DISTINCT FROM d.n_readings"
        )
        out["rollup_mismatches"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM metering_dailyrollup")
        daily_rows = cur.fetchone()[0]
        sizes = {}
        for table in ("metering_reading", "metering_dailyrollup", "metering_monthlyrollup"):
            # a partitioned table's size is the sum of its partitions'
            cur.execute(
                "SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0) "
                "FROM pg_class c WHERE c.oid = %s::regclass OR c.oid IN "
                "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                [table, table],
            )
            sizes[table] = cur.fetchone()
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'metering_reading'::regclass")
        out["reading_partitions"] = cur.fetchone()[0]
    t, i = sizes["metering_reading"]
    out.update(
        reading_table_bytes=int(t),
        reading_index_bytes=int(i),
        bytes_per_reading=round((int(t) + int(i)) / rows_total, 1),
        daily_rollup_rows=daily_rows,
        bytes_per_daily_rollup=round(sum(map(int, sizes["metering_dailyrollup"])) / max(daily_rows, 1), 1),
    )

    from lowcarbon.dashboard.services import public_figures

    t0 = time.perf_counter()
    public_figures(refresh=True)
    out["public_figures_cold_ms"] = round(1000 * (time.perf_counter() - t0))

    def timed(client: Client, url: str, n: int = 20) -> dict[str, float]:
        client.get(url)  # warm-up
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(url)
            ms.append(1000 * (time.perf_counter() - t0))
            assert r.status_code == 200, (url, r.status_code)
        return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(pct(ms, 0.95), 1)}

    anon = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    owner = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    owner.force_login(users[0])
    boss = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    boss.force_login(admin)
    out["pages"] = {
        "/dashboard/ (public)": timed(anon, "/dashboard/"),
        "/my/ (household owner)": timed(owner, "/my/"),
        "/my/ (administrator)": timed(boss, "/my/"),
    }
    return out


def write_results(r: dict[str, object], command: str, load: str) -> None:
    pages = r["pages"]
    assert isinstance(pages, dict)
    lines = [
        "# Scale simulation: PV systems × a year of 15-minute readings on PostgreSQL",
        "",
        "What is timed: see the docstring of `bench/scale.py`; the arithmetic for province scale is in",
        "docs/scaling.md.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; load average before/after the run: {load}.  ",
        f"Date: {datetime.now():%Y-%m-%d}.",
        "",
        "| figure | result |",
        "|---|---|",
        f"| systems × months | {r['systems']:,} × {r['months']} |",
        f"| readings ingested | {r['rows']:,} |",
        f"| ingest (whole path, files of {GROUP} meters × one month) | {r['ingest_s']} s = "
        f"**{r['ingest_rows_per_s']:,} rows/s** (per file {r['ingest_file_rows_per_s_min_max'][0]:,}–"  # type: ignore[index]
        f"{r['ingest_file_rows_per_s_min_max'][1]:,}) |",  # type: ignore[index]
        f"| post-ingest refresh (plausibility + quantification) | {r['refresh_s']} s = "
        f"{r['refresh_ms_per_system_month']} ms per system-month |",
        f"| daily rollups rebuilt from raw readings (one GROUP BY) | {r['rollup_rebuild_s']} s; "
        f"mismatches with the rollups kept at ingest: **{r['rollup_mismatches']}** |",
        f"| readings table (partitions: {r['reading_partitions']}) | "
        f"{int(r['reading_table_bytes']) / 2**30:.2f} GiB data + {int(r['reading_index_bytes']) / 2**30:.2f} GiB "  # type: ignore[call-overload]
        f"index = **{r['bytes_per_reading']} bytes per reading** |",
        f"| daily rollups | {r['daily_rollup_rows']:,} rows, {r['bytes_per_daily_rollup']} bytes per row |",
        f"| public dashboard figures computed afresh | {r['public_figures_cold_ms']} ms |",
    ]
    for page, v in pages.items():
        lines.append(f"| {page}, 20 requests after warm-up | p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms |")
    (ROOT / "bench/results/scale.md").write_text("\n".join(lines) + "\n")


def emit_figures(r: dict) -> None:
    from _report import emit

    size = f"{r['systems']:,} systems × {r['months']} months, PostgreSQL"
    emit(
        "scale_ingest",
        r["ingest_rows_per_s"],
        "rows/s",
        None,
        None,
        what=f"scale simulation ({size}): ingest of {r['rows']:,} 15-minute readings, whole path",
        detail=f"{r['ingest_s']} s; per file {r['ingest_file_rows_per_s_min_max'][0]:,}–"
        f"{r['ingest_file_rows_per_s_min_max'][1]:,} rows/s",
    )
    emit(
        "scale_refresh",
        r["refresh_ms_per_system_month"],
        "ms per system-month",
        None,
        None,
        what=f"scale simulation ({size}): post-ingest refresh (plausibility, quantification)",
        detail=f"{r['refresh_s']} s in all",
    )
    emit(
        "scale_rollups",
        r["rollup_mismatches"],
        "mismatches",
        "0",
        r["rollup_mismatches"] == 0,
        what=f"scale simulation ({size}): daily rollups rebuilt from the raw readings vs those kept at ingest",
        detail=f"rebuild {r['rollup_rebuild_s']} s",
    )
    emit(
        "scale_storage",
        r["bytes_per_reading"],
        "bytes per reading",
        None,
        None,
        what=f"scale simulation ({size}): readings table and indexes",
        detail=f"{r['reading_partitions']} monthly partitions",
    )
    for page, v in r["pages"].items():
        emit(
            "scale_page",
            v["p95_ms"],
            "ms p95",
            f"< {TARGET_P95_MS:.0f} ms",
            v["p95_ms"] < TARGET_P95_MS,
            what=f"scale simulation ({size}): {page}, one client, warm",
            detail=f"p50 {v['p50_ms']} ms",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", type=int, default=2000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--write", action="store_true", help="write bench/results/scale.md")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.systems, a.months)))
        return
    load0 = os.getloadavg()[0]
    env = fresh_database()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--systems", str(a.systems), "--months", str(a.months)],
        env=env,
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    result = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        else:
            print(line)
    result["wall_s"] = round(time.perf_counter() - t0)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    emit_figures(result)
    load = f"{load0:.1f} / {os.getloadavg()[0]:.1f}"
    if a.write:
        cmd = "bench/scale.py" + (
            "" if (a.systems, a.months) == (2000, 12) else f" --systems {a.systems} --months {a.months}"
        )
        write_results(result, f".venv/bin/python {cmd} --write", load)


if __name__ == "__main__":
    main()
