"""Browser journey of the information service in headless Chromium: a content editor writes a notice in Chinese and
English and publishes it; the public reads it in both languages; a visitor from another town sends a cooperation
request to the school's PV showcase without logging in, and the school sees it in its inbox with a notification
and marks it answered. Screenshots are saved under test-artifacts/."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import click_nav, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


TITLE_ZH = "2026年度分布式光伏碳普惠申报工作通知"
TITLE_EN = "Notice on 2026 PV carbon-inclusion applications"


def test_editor_publishes_and_visitor_asks_for_cooperation(live_server, browser, demo):
    from lowcarbon.info.models import Article, CooperationRequest, DemoProject
    from lowcarbon.registry.models import Notification

    base = live_server.url

    # --- the content editor writes and publishes a notice in both languages -----------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "editor")
    click_nav(page, "内容编辑")
    page.click("text=新建通知或文件")
    page.select_option("#id_category", "policy")
    page.fill("#id_title_zh", TITLE_ZH)
    page.fill("#id_body_zh", "各光伏业主、服务机构：\n\n2026年度申报受理自3月1日开始，请通过平台提交申请。")
    page.fill("#id_title_en", TITLE_EN)
    page.fill(
        "#id_body_en",
        "To PV owners and service agencies:\n\nApplications for 2026 open on 1 March; please file them on the platform.",
    )
    page.click("#save")
    assert "草稿已保存" in page.content()
    article = Article.objects.get(title_zh=TITLE_ZH)
    assert not article.published
    page.click("#publish")
    assert "已发布：该通知现已公开。" in page.content()
    shot(page, "info-editor-published-zh")
    ctx.close()

    # --- the public reads it in Chinese and in English ---------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/info/")
    assert TITLE_ZH in page.content()
    shot(page, "info-list-zh")
    page.click(f"text={TITLE_ZH}")
    assert "2026年度申报受理自3月1日开始" in page.content()
    shot(page, "info-notice-zh")
    ctx.close()
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/info/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert TITLE_EN in page.content()
    page.click(f"text={TITLE_EN}")
    assert "Applications for 2026 open on 1 March" in page.content()
    shot(page, "info-notice-en")
    # a Chinese-only item shows the note in English
    page.goto(f"{base}/info/?q=备案")
    page.click("text=小榄镇四个光伏碳普惠项目获省发展改革委备案")
    assert "This text is not available in English; it is shown in Chinese." in page.content()
    shot(page, "info-notice-fallback-en")
    ctx.close()

    # --- a visitor from another town asks the school for a visit, without logging in --------------------------
    project = DemoProject.objects.get(name_zh="永宁中学屋顶光伏科普示范点")
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/info/projects/")
    shot(page, "info-projects-zh")
    page.click("text=永宁中学屋顶光伏科普示范点")
    assert "计量发电量" in page.content() and "减排量" in page.content()
    page.fill("#id_name", "陈家豪")
    page.fill("#id_organisation", "中山市东凤镇发展和改革局")
    page.fill("#id_contact", "0760-2277 8899")
    page.fill("#id_message", "我镇计划推广学校屋顶光伏，希望下月带队参观并交流运维和碳普惠申报经验。")
    page.click("text=发送请求")
    assert "您的请求已发送给" in page.content()
    shot(page, "info-project-request-sent-zh")
    ctx.close()
    req = CooperationRequest.objects.get(organisation="中山市东凤镇发展和改革局")
    assert req.project == project and req.state == "new"
    assert Notification.objects.filter(
        user=project.owner_user, message__contains="中山市东凤镇发展和改革局"
    ).exists()

    # --- the school sees it in its inbox and marks it answered --------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "school")
    assert page.locator(".userbox .badge").count() == 1  # unread notifications
    page.goto(f"{base}/registry/notifications/")
    assert "中山市东凤镇发展和改革局" in page.content()
    page.goto(f"{base}/info/inbox/")
    row = page.locator(f"#request-{req.pk}")
    assert "我镇计划推广学校屋顶光伏" in row.inner_text()
    shot(page, "info-inbox-zh")
    row.locator("input[name=answer_note]").fill("已电话联系，约定下月10日参观")
    row.locator("button[type=submit]").click()
    assert "已标记为已回复" in page.content()
    req.refresh_from_db()
    assert req.state == "answered"
    shot(page, "info-inbox-answered-zh")
    ctx.close()
