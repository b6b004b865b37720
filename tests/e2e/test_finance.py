"""Browser journey of investment and financing in headless Chromium: an enterprise owner publishes a financing
need, a financier finds it and expresses interest, the owner sees the lead (and its notification); the public
rooftop estimator for an industrial park. Screenshots are saved under test-artifacts/."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_publish_interest_lead_and_estimator(live_server, browser, demo):
    from lowcarbon.finance.models import FinancingProject, Interest

    base = live_server.url

    # --- the public estimator for a park of two buildings, in Chinese, without log-in ------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/finance/estimator/")
    rows = page.locator("table.roofs tbody tr")
    rows.nth(0).locator("input[name=name]").fill("冲压车间")
    rows.nth(0).locator("input[name=area_m2]").fill("3250")
    rows.nth(1).locator("input[name=name]").fill("仓库")
    rows.nth(1).locator("input[name=area_m2]").fill("1300")
    page.click("#estimate")
    page.wait_for_load_state("networkidle")
    assert page.locator("#total-kwp").inner_text() == "700.0"  # (3,250 + 1,300) m² / 6.5 m² per kWp
    assert page.locator("#total-cny").inner_text() == "2,450,000"
    assert "冲压车间" in page.locator("#estimate-table").inner_text()
    shot(page, "finance-estimator-zh")
    ctx.close()

    # --- the enterprise owner publishes a new financing need -----------------------------------------------
    before = FinancingProject.objects.count()
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "enterprise3")
    page.goto(f"{base}/finance/projects/new/")
    page.fill("#name", "纺织车间屋顶光伏二期")
    page.select_option("#community", "shengfeng")
    page.fill("#roof_area_m2", "5200")
    page.fill("#amount_cny", "0")
    page.select_option("#financing_type", "lease")
    page.click("#project-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "融资金额（元）：0 超出允许范围：须大于 0" in page.content()
    assert FinancingProject.objects.count() == before
    page.fill("#amount_cny", "2800000")
    page.click("#project-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    project = FinancingProject.objects.get(name="纺织车间屋顶光伏二期")
    assert project.capacity_kwp == 800  # 5,200 m² / 6.5
    page.wait_for_function("document.querySelector('#cashflow-chart canvas') !== null")
    assert "性能比" in page.locator("#method-note").inner_text()
    page.click("#publish")
    page.wait_for_load_state("networkidle")
    assert "已发布" in page.content()
    shot(page, "finance-project-owner-zh")
    ctx.close()

    # --- the financier finds it and expresses interest -------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "financier")
    page.goto(f"{base}/finance/?financing_type=lease")
    assert "纺织车间屋顶光伏二期" in page.locator("#projects").inner_text()
    shot(page, "finance-financier-list-zh")
    page.click("text=纺织车间屋顶光伏二期")
    page.wait_for_load_state("networkidle")
    page.fill("#i-amount", "2500000")
    page.fill("#i-message", "我司可提供融资租赁，欢迎沟通。")
    page.fill("#i-terms", "6年，租金按月支付")
    page.click("#interest-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "项目业主已收到通知" in page.content()
    assert Interest.objects.filter(project=project, financier__username="financier").exists()
    ctx.close()

    # --- the owner sees the lead and the notification, in English this time ------------------------------------
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "enterprise3")
    page.goto(f"{base}/registry/notifications/")
    assert project.code in page.content()
    page.goto(f"{base}/finance/projects/{project.code}/")
    leads = page.locator("#leads").inner_text()
    assert "2,500,000" in leads and "我司可提供融资租赁" in leads
    assert "Performance ratio against clear sky" in page.content()
    shot(page, "finance-project-lead-en")
    ctx.close()
