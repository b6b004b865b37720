"""A platform installation of the tests' own on SQLite (migrated, demo loaded, a few media files), made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.helpers import ACTIVE_PG, env_for, lowcarbon


def make_site(var_dir: Path, database_url: str = "") -> dict[str, str]:
    """Migrate and load the demo into a data directory (and database), add an evidence file; returns its env."""
    env = env_for(var_dir, database_url)
    for args in (("migrate", "-v0"), ("demo",)):
        done = lowcarbon(*args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    evidence = var_dir / "media" / "evidence" / "2025" / "01"
    evidence.mkdir(parents=True, exist_ok=True)
    (evidence / "并网验收单.pdf").write_bytes(b"%PDF-1.4 test evidence \x00\xff")
    return env


@pytest.fixture(scope="session")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if ACTIVE_PG:
        pytest.skip("SQLite installation tests run in the SQLite pass")
    return make_site(tmp_path_factory.mktemp("sqlite_site") / "var")
