"""What the database benchmarks share: fresh scratch databases, child steps in fresh processes, and the
concurrent-clients runner (client threads spread over processes, started together, latencies collected).

Used by bench/registry.py, bench/market.py and bench/ingest.py. PostgreSQL: the server is
LOWCARBON_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres); each script has its own scratch
database (`bench_<script>`, overridable by LOWCARBON_BENCH_PG_DB), created, migrated and dropped around each
measurement. SQLite: a temporary LOWCARBON_VAR_DIR, removed afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOWCARBON = str(ROOT / ".venv/bin/lowcarbon")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_created_dirs: set[str] = set()


# ---------------------------------------------------------------------------------------------------------------
# databases


def pg_base() -> str:
    return os.environ.get("LOWCARBON_BENCH_PG_URL", DEFAULT_PG_URL)


def pg_db(default: str) -> str:
    """The scratch database name: LOWCARBON_BENCH_PG_DB, else the script's default."""
    return os.environ.get("LOWCARBON_BENCH_PG_DB", default)


def _pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_db(kind: str, name: str) -> dict[str, str]:
    """A new empty database migrated with `lowcarbon migrate`; returns the environment pointing at it.

    kind "postgres": the database `name` on the benchmark server, dropped first if it exists;
    kind "sqlite": the SQLite file of a new temporary LOWCARBON_VAR_DIR."""
    env = dict(os.environ)
    var_dir = tempfile.mkdtemp(prefix=f"lowcarbon-{name}-")
    _created_dirs.add(var_dir)
    env["LOWCARBON_VAR_DIR"] = var_dir
    env.pop("LOWCARBON_TEST_DATABASE_URL_ACTIVE", None)
    if kind == "postgres":
        import psycopg

        _pg_drop(name)
        with psycopg.connect(pg_base(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["LOWCARBON_DATABASE_URL"] = pg_base().rsplit("/", 1)[0] + "/" + name
    else:
        env.pop("LOWCARBON_DATABASE_URL", None)
    subprocess.run([LOWCARBON, "migrate", "-v", "0"], env=env, check=True)
    return env


def drop_db(env: dict[str, str]) -> None:
    """Remove what `fresh_db` made for `env`: the PostgreSQL database and the temporary directory."""
    url = env.get("LOWCARBON_DATABASE_URL", "")
    if url.startswith("postgres"):
        _pg_drop(urlsplit(url).path.lstrip("/"))
    var_dir = env.get("LOWCARBON_VAR_DIR", "")
    if var_dir in _created_dirs:
        shutil.rmtree(var_dir, ignore_errors=True)
        _created_dirs.discard(var_dir)


# ---------------------------------------------------------------------------------------------------------------
# processes


def child(script: str, env: dict[str, str], *args: str) -> dict:
    """Run `script --child ARGS` in a fresh process; returns the JSON object it prints last."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcarbon.config.settings")
    import django

    django.setup()


def machine() -> str:
    """The machine in one line, for the benchmarks' printed results: cores, CPU model, memory, operating system."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"nproc {os.cpu_count()}, {cpu}, RAM {mem:.1f} GiB, {os_name()}"


# ---------------------------------------------------------------------------------------------------------------
# concurrent clients


def run_clients(
    script: str, env: dict[str, str], threads: int, procs: int, argv: Callable[[int, int], list[str]]
) -> tuple[list[float], dict[str, int], list[str], dict[str, int]]:
    """Parent side: spread `threads` client threads over `procs` processes `script --child *argv(i, n)` (process
    i with n threads), wait until every process is set up, start them together, and merge what they report
    (`client_threads`): latencies of the successful calls, refusals by code, errors, and the sums of the
    processes' own counters (a report's "counters", when it has them)."""
    per = [threads // procs + (1 if i < threads % procs else 0) for i in range(procs)]
    running = [
        subprocess.Popen(
            [sys.executable, script, "--child", *argv(i, n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, n in enumerate(per)
    ]
    for p in running:  # every client process set up before the clock starts
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.5
    for p in running:
        assert p.stdin is not None
        p.stdin.write(f"{start_at}\n")
        p.stdin.flush()
    lat: list[float] = []
    refused: dict[str, int] = {}
    errors: list[str] = []
    counters: dict[str, int] = {}
    for p in running:
        out, _ = p.communicate()
        r = json.loads(out.strip().splitlines()[-1])
        lat += r["latencies"]
        errors += r["errors"]
        for k, v in r["refused"].items():
            refused[k] = refused.get(k, 0) + v
        for k, v in r.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + v
    return lat, refused, errors, counters


def client_threads(
    threads: int,
    seconds: float,
    seed: int,
    make_op: Callable[[int], Callable[[random.Random], Callable[[], object]]],
) -> dict:
    """Child side of `run_clients`, after Django is set up and the shared data is loaded: closes the set-up
    connection, reports "ready", waits for the start time on stdin, then runs `threads` threads for `seconds`.
    Thread k gets `prepare = make_op(k)` and loops: `call = prepare(rng)` picks the arguments (rng seeded by seed
    and k), then `call()` is timed; a DomainError counts as refused."""
    from django.db import connection

    from lowcarbon.core.domain.errors import DomainError

    connection.close()
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    lat: list[list[float]] = [[] for _ in range(threads)]
    refused: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        prepare = make_op(k)
        mine = lat[k]
        try:
            while time.time() < start_at:
                time.sleep(0.001)
            end = start_at + seconds
            while time.time() < end:
                call = prepare(rng)
                t0 = time.perf_counter()
                try:
                    call()
                except DomainError as exc:
                    with lock:
                        refused[exc.code] = refused.get(exc.code, 0) + 1
                    continue
                mine.append(time.perf_counter() - t0)
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


def latency_summary(lat: list[float], seconds: float) -> dict[str, float]:
    """Calls per second over `seconds` and the p50/p95/p99 latency in ms (0 with too few calls)."""
    s = sorted(lat)
    q = statistics.quantiles(s, n=100) if len(s) > 1 else [0.0] * 99
    return {
        "rate": len(s) / seconds,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
    }


def os_name() -> str:
    """The operating system as its distribution names itself (e.g. "Debian GNU/Linux 12 (bookworm)")."""
    import platform

    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()
