"""Browser tests: headless Chromium (Debian's binary) driven by Playwright for Python; screenshots for people to
look at are saved under test-artifacts/. Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

import os

import pytest

from tests.e2e.helpers import CHROMIUM, chromium_missing

# the ORM is used from the test thread while Playwright runs its own event loop in a greenlet
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser():
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def demo(db, settings, tmp_path):
    """The bilingual demo (people, systems, a year of readings, applications, market, notices, financing)."""
    from django.core.cache import cache

    from lowcarbon.demo import ensure_demo

    settings.MEDIA_ROOT = tmp_path / "media"
    ensure_demo()
    cache.clear()
