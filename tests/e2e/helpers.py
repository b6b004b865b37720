"""Shared pieces of the browser tests."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_missing() -> str:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright for Python is not installed (pip install -e '.[dev]')"
    return ""


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page, base: str, username: str, password: str | None = None) -> None:
    from lowcarbon.demo import DEMO_PASSWORD

    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def click_nav(page, label: str) -> None:
    """Follow a link of the main navigation as a person would: a link inside a drop-down menu (管理, 公开信息) is
    reached by opening that menu first."""
    link = page.locator("nav.mainnav a", has_text=label).first
    if not link.is_visible():
        menu = page.locator("nav.mainnav details.navmenu").filter(has=page.locator("a", has_text=label))
        menu.locator("summary").click()
    link.click()
