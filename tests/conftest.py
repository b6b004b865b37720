"""Test configuration. The suite runs on SQLite; `./run-tests` runs it again on PostgreSQL when one is reachable
(LOWCARBON_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres)."""

from __future__ import annotations

import os

import pytest
from django.db import connection


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [f"lowcarbon test database backend: {engine}"]


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _chinese_default(settings):  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "zh-hans"
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def media_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    if os.environ.get("LOWCARBON_TEST_DATABASE_URL_ACTIVE"):
        return
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: run ./run-tests (it reruns the suite on PostgreSQL when reachable)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip_pg)
