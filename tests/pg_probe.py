"""Prints the PostgreSQL URL the suite can use, or the reason none is reachable (exit code 1)."""

from __future__ import annotations

import os
import sys

url = os.environ.get("LOWCARBON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
try:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), connect_timeout=3) as conn:
        conn.execute("select 1")
except Exception as exc:  # any failure means: no PostgreSQL for this run
    print(
        f"no PostgreSQL reachable at {url.split('@')[-1]}: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
    )
    sys.exit(1)
print(url)
