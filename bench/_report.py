"""Machine-readable headline figures of the benchmark scripts (read by bench/run_all.py).

Each script calls `emit(...)` once per headline figure, next to its usual human-readable output. A figure is printed
as one line `BENCH {json}` on stdout and, when the environment variable BENCH_JSON names a file, appended to that
file as one JSON object per line.

    emit("transfers_rate", 423.0, "/s", "≥ 1,500 /s", False, what="transfers, 16 threads, PostgreSQL")

name    a short identifier, unique within the script's run
value   the measured number
unit    how the value reads ("/s", "s", "ms", "MB", "× plain", ...)
target  the target as text ("≥ 1,500 /s"), or None for a reference figure without a target
met     True / False against the target, None when there is no target
what    a human description of the figure (defaults to the name)
detail  optional context for the result cell (latency spread, counts, checks)
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def command_line() -> str:
    """The command that ran this script, as a reader would type it from the project root."""
    script = Path(sys.argv[0])
    try:
        shown = script.resolve().relative_to(Path(__file__).resolve().parent.parent)
    except ValueError:
        shown = script
    return " ".join([".venv/bin/python", str(shown), *sys.argv[1:]])


def emit(
    name: str,
    value: float,
    unit: str,
    target: str | None,
    met: bool | None,
    *,
    what: str | None = None,
    detail: str | None = None,
) -> dict[str, object]:
    record = {
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "met": met,
        "what": what or name,
        "detail": detail,
        "command": command_line(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    line = json.dumps(record, ensure_ascii=False, default=str)
    print(f"BENCH {line}", flush=True)
    path = os.environ.get("BENCH_JSON")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return record
