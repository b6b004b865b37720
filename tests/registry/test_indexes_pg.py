"""The registry's indexes on PostgreSQL, where every index costs each transfer: the pattern (LIKE) indexes that
Django adds beside unique text columns are gone where nothing matches by pattern (migration registry 0008, which
reverses cleanly), and an account's blocks are indexed in the order units are taken in."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PATTERN_INDEXED = {
    ("registry_journalentry", "hash"),
    ("registry_transfer", "number"),
    ("registry_retirement", "number"),
    ("registry_cancellation", "number"),
}


def _pattern_indexes() -> set[tuple[str, str]]:
    """(table, column) of the columns above that have a pattern index."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexdef LIKE '%%varchar_pattern_ops%%'"
        )
        rows = cur.fetchall()
    return {
        (table, column)
        for table, column in PATTERN_INDEXED
        for t, definition in rows
        if t == table and f"({column} varchar_pattern_ops)" in definition
    }


@pytest.mark.django_db
def test_no_pattern_index_on_the_journal_hash_or_the_record_numbers():
    assert _pattern_indexes() == set()
    with connection.cursor() as cur:  # the unique indexes that serve whole look-ups stay
        cur.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE 'CREATE UNIQUE%%' "
            "AND ((tablename = 'registry_journalentry' AND indexdef LIKE '%%(hash)') "
            "OR (tablename IN ('registry_transfer', 'registry_retirement', 'registry_cancellation') "
            "AND indexdef LIKE '%%(number)'))"
        )
        assert cur.fetchone()[0] == 4


@pytest.mark.django_db
def test_an_accounts_blocks_are_indexed_oldest_first():
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'block_account_oldest_idx'")
        (definition,) = cur.fetchone()
    assert definition.endswith("(account_id, state, vintage, series, start)")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_that_drops_the_pattern_indexes_reverses():
    before = ("registry", "0007_serial_block_oldest_first_index")
    after = ("registry", "0008_drop_unused_pattern_indexes")
    try:
        MigrationExecutor(connection).migrate([before])
        assert _pattern_indexes() == PATTERN_INDEXED
        MigrationExecutor(connection).migrate([after])
        assert _pattern_indexes() == set()
    finally:
        MigrationExecutor(connection).migrate([after])
