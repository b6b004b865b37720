"""Dashboard pages under concurrent users, against a running server with the demo data:

    .venv/bin/lowcarbon serve --demo --port 8103            # in another terminal (or any server with the demo)
    .venv/bin/python bench/dashboard.py --base http://127.0.0.1:8103 --users 50 --requests 40 [--write]

Each of the `--users` threads is one visitor with its own keep-alive connection: half are anonymous readers of the
public dashboard (/dashboard/), half are logged-in demo people (households, the aggregator, reviewers, the
administrator, enterprises...) who load their role dashboard (/my/). After a warm-up request each visitor makes
`--requests` requests as fast as the server answers. Reported: requests/s and p50/p95/p99/max latency per page
(target p95 < 100 ms). --write saves the table to bench/results/dashboard.md. Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlparse

from _common import os_name
from _report import emit

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "xiaolan-demo-2025"
LOGINS = [f"household{i:02d}" for i in range(1, 11)] + [
    "aggregator",
    "reviewer",
    "reviewer2",
    "admin",
    "enterprise1",
    "enterprise2",
    "enterprise3",
    "school",
    "verifier",
    "buyer",
]
TARGET_P95_MS = 100.0


class Visitor:
    """One user with a keep-alive connection and its cookies (a session cookie when logged in)."""

    def __init__(self, host: str, port: int, username: str | None) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.username = username

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _quickack(self) -> None:
        # Django's dev server writes the headers and the body of a keep-alive response separately; without quick
        # ACKs the client's delayed ACK stalls each response by ~40 ms, which would measure TCP, not the page.
        if self.conn.sock is not None and hasattr(socket, "TCP_QUICKACK"):
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        h = {"Accept-Language": "zh-CN", **self._cookie_header(), **(headers or {})}
        t0 = time.perf_counter()
        for attempt in (1, 2):
            try:
                if self.conn.sock is None:
                    self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._quickack()
                self.conn.request(method, path, body=body, headers=h)
                self._quickack()
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                if attempt == 2:
                    raise
        elapsed = time.perf_counter() - t0
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if resp.headers.get("Connection", "").lower() == "close":
            self.conn.close()
        return resp.status, data, elapsed

    def login(self) -> None:
        status, body, _ = self.request("GET", "/login/")
        m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or not m:
            raise SystemExit(f"cannot open the log-in page ({status})")
        form = urlencode(
            {"csrfmiddlewaretoken": m.group(1).decode(), "username": self.username, "password": DEMO_PASSWORD}
        )
        status, _, _ = self.request(
            "POST",
            "/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": "http://127.0.0.1/login/",
            },
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"log-in of {self.username} failed ({status}); is the demo loaded?")


def run(base: str, users: int, requests: int, think: float = 0.0) -> dict[str, list[float]]:
    u = urlparse(base)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("benchmark only a server on the loopback address")
    host, port = u.hostname, u.port or 80
    visitors = []
    for i in range(users):
        anonymous = i % 2 == 0
        v = Visitor(host, port, None if anonymous else LOGINS[(i // 2) % len(LOGINS)])
        if not anonymous:
            v.login()
        visitors.append(v)
    results: dict[str, list[float]] = {"/dashboard/": [], "/my/": []}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(users + 1)

    def work(v: Visitor) -> None:
        path = "/my/" if v.username else "/dashboard/"
        status, _, _ = v.request("GET", path)  # warm-up (not counted)
        start.wait()
        mine = []
        rng = random.Random(id(v))
        for _ in range(requests):
            if think:
                time.sleep(rng.uniform(0.5 * think, 1.5 * think))
            status, _, t = v.request("GET", path)
            if status != 200:
                with lock:
                    errors.append(f"{path} {status}")
            mine.append(t)
        with lock:
            results[path].extend(mine)

    threads = [threading.Thread(target=work, args=(v,)) for v in visitors]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    results["_wall"] = [wall]
    return results


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] * 1000


def server_kind(port: int) -> str:
    try:
        out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
        line = next((x for x in out.splitlines() if f":{port} " in x), "")
        pid = re.search(r"pid=(\d+)", line)
        if pid:
            return Path(f"/proc/{pid.group(1)}/cmdline").read_text().replace("\0", " ").strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="http://127.0.0.1:8103")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40, help="requests per user after the warm-up")
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a user waits between pages (uniform 0.5–1.5 ×); 0 = back to back (saturation)",
    )
    ap.add_argument(
        "--write", action="store_true", help="write (or with --append, add to) bench/results/dashboard.md"
    )
    ap.add_argument("--append", action="store_true", help="add this run's table to the results file")
    ap.add_argument("--note", default="", help="a line added to the written results (e.g. which server)")
    args = ap.parse_args()
    res = run(args.base, args.users, args.requests, args.think)
    wall = res.pop("_wall")[0]
    total = sum(len(v) for v in res.values())
    rows = []
    for path, values in res.items():
        rows.append(
            (
                path,
                len(values),
                pct(values, 50),
                pct(values, 95),
                pct(values, 99),
                max(values) * 1000,
                statistics.mean(values) * 1000,
            )
        )
    allv = [x for v in res.values() for x in v]
    rows.append(
        (
            "all",
            total,
            pct(allv, 50),
            pct(allv, 95),
            pct(allv, 99),
            max(allv) * 1000,
            statistics.mean(allv) * 1000,
        )
    )
    lines = [
        "| page | requests | p50 ms | p95 ms | p99 ms | max ms | mean ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.1f} |" for r in rows
    ]
    p95 = rows[-1][3]
    verdict = "meets" if p95 < TARGET_P95_MS else "misses"
    mode = f"think time {args.think:g} s" if args.think else "no think time (back to back)"
    summary = (
        f"{args.users} concurrent users, {mode}: {total} requests in {wall:.1f} s = {total / wall:.0f} requests/s; "
        f"p95 {p95:.0f} ms: {verdict} the target p95 < {TARGET_P95_MS:.0f} ms."
    )
    print("\n".join(lines))
    print(summary)
    emit(
        "dashboard_p95" + ("_think" if args.think else ""),
        p95,
        "ms",
        f"< {TARGET_P95_MS:.0f} ms",
        p95 < TARGET_P95_MS,
        what=f"public and role dashboards, {args.users} concurrent users, {mode}, p95 of all requests",
        detail=f"{total / wall:.0f} requests/s; "
        + "; ".join(f"{r[0]} p50 {r[2]:.0f} / p95 {r[3]:.0f} ms" for r in rows[:-1])
        + f"; {total} requests",
    )
    if not args.write:
        return
    port = urlparse(args.base).port or 80
    cpu = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        platform.processor(),
    )
    cmd = f"bench/dashboard.py --base {args.base} --users {args.users} --requests {args.requests}"
    if args.think:
        cmd += f" --think {args.think:g}"
    server = server_kind(port)
    server = re.sub(r"^\S*/python3?\S* ", "", server)
    server = re.sub(r"^\S*/bin/lowcarbon", "lowcarbon", server)
    run_text = f"""## {mode}

Command: `.venv/bin/python {cmd}`. Date: {datetime.now():%Y-%m-%d %H:%M}.

{chr(10).join(lines)}

{summary}
{args.note}
"""
    out = ROOT / "bench" / "results" / "dashboard.md"
    if args.append and out.exists():
        out.write_text(out.read_text(encoding="utf-8") + "\n" + run_text, encoding="utf-8")
    else:
        head = f"""# Dashboards under concurrent users

Server: `{server}` (database: SQLite, the demo data). Machine: {os.cpu_count()} CPU ({cpu}),
Python {platform.python_version()}, {os_name()}; the load generator runs on the same
machine.

"""
        out.write_text(head + run_text, encoding="utf-8")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
