"""Browser checks of the dashboards in headless Chromium on the demo data: the public dashboard in Chinese and
English (charts drawn, the map k-anonymous, the time of the data stated), and /my/ for a household, the aggregator,
a reviewer and the administrator, each seeing its own panels. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_public_dashboard_and_role_dashboards(live_server, browser, demo):
    from lowcarbon.pv.models import PVSystem

    base = live_server.url
    codes = list(PVSystem.objects.values_list("code", flat=True))

    # --- the public, in Chinese, without logging in ------------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.click("a[href='/dashboard/']")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.querySelectorAll('#chart-map canvas').length > 0")
    body = page.content()
    assert "小榄镇分布式光伏公开看板" in body and "数据计算于" in body
    assert page.locator("#kpi-systems").inner_text() == str(len(codes))
    assert page.locator("#chart-generation canvas").count() == 1
    # the map's areas: each has at least k systems, and no system code appears anywhere on the page
    counts = [int(x) for x in page.locator("#area-table tbody td:nth-child(2)").all_inner_texts()]
    assert counts and all(n >= 5 for n in counts) and sum(counts) == len(codes)
    assert not [c for c in codes if c in body]
    assert page.locator("#map-outline-note").is_visible()
    shot(page, "dashboard-public-zh")
    ctx.close()

    # --- the public, in English ----------------------------------------------------------------------------------
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/dashboard/")
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.querySelectorAll('#chart-map canvas').length > 0")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Xiaolan distributed PV: public dashboard" in page.content()
    assert "Figures computed at" in page.content()
    shot(page, "dashboard-public-en")
    ctx.close()

    # --- a household -------------------------------------------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "household01")
    page.click("a[href='/my/']")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/my/?month=2025-07")
    own = PVSystem.objects.get(owner_user__username="household01")
    other = PVSystem.objects.get(owner_user__username="household02")
    body = page.content()
    assert page.locator("#panel-owner").is_visible()
    assert own.code in body and other.code not in body
    assert page.locator("#panel-admin").count() == 0 and page.locator("#panel-reviewer").count() == 0
    assert "仅供参考，非报价" in body
    shot(page, "dashboard-my-household-zh")
    ctx.close()

    # --- the aggregator ------------------------------------------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "aggregator")
    page.goto(f"{base}/my/?month=2025-07")
    assert page.locator("#panel-aggregator").is_visible()
    assert page.locator("#completeness-table tbody tr").count() >= 10
    shot(page, "dashboard-my-aggregator-zh")
    with page.expect_download() as dl:
        page.click("a[href='/my/exports/systems.xlsx']")
    assert dl.value.suggested_filename.endswith(".xlsx")
    ctx.close()

    # --- a reviewer, with an application submitted nine days ago waiting ---------------------------------------
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from lowcarbon.accounts.models import User
    from lowcarbon.registry.models import Application
    from tests.dashboard.helpers import system_in
    from tests.registry.app_helpers import isolation_application

    newcomer = User.objects.create_user(username="newcomer", password="unused-Pass-2026", real_name="新业主")
    app = isolation_application(newcomer, system_in("lianfeng", newcomer))
    Application.objects.filter(pk=app.pk).update(
        state=Application.State.SUBMITTED, state_since=timezone.now() - timedelta(days=9)
    )
    cache.clear()
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "reviewer")
    page.goto(f"{base}/my/")
    assert page.locator("#panel-reviewer").is_visible() and page.locator("#panel-owner").count() == 0
    row = page.locator("#review-table tbody tr", has_text=app.code)
    assert row.locator("td").last.inner_text().strip() == "9"
    shot(page, "dashboard-my-reviewer-zh")
    ctx.close()

    # --- the administrator, in English ----------------------------------------------------------------------------
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "admin")
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    page.goto(f"{base}/my/")
    assert page.locator("#panel-admin").is_visible()
    text = page.locator("#panel-admin").inner_text()
    assert "Platform health" in text and "Ingest by source" in text and "Quarantine by reason" in text
    shot(page, "dashboard-my-admin-en")
    page.goto(f"{base}/my/reports/")
    assert page.locator("#report-table tbody tr").count() >= 12
    shot(page, "dashboard-reports-en")
    ctx.close()
