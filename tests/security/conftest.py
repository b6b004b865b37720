"""The security tests make thousands of refused requests on purpose: Django's request log stays quiet."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _quiet_request_log():  # type: ignore[no-untyped-def]
    loggers = [logging.getLogger(n) for n in ("django.request", "django.security.csrf")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


@pytest.fixture(autouse=True)
def _fresh_login_counts(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Failed log-ins are counted in a file cache of the test's own (not the one of the installation)."""
    settings.CACHES = {
        **settings.CACHES,
        "auth": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "auth-cache"),
        },
    }
    yield
    caches["auth"].clear()
