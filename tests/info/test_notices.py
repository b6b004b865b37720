"""Notices and documents: editors write them in both languages, drafts and scheduled notices (and their attachments)
stay invisible to the public, the page shows the visitor's language or the other one with a note, body text is
escaped, and every refusal names the field and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lowcarbon.info import services as svc
from lowcarbon.info.models import Article, ArticleRevision, Attachment
from tests.factories import make_user
from tests.info.helpers import TEXT, make_article, make_editor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def editor(db, media_root):
    return make_editor()


def client_for(user=None, lang: str | None = None) -> Client:  # type: ignore[no-untyped-def]
    c = Client(HTTP_ACCEPT_LANGUAGE=lang) if lang else Client()
    if user is not None:
        c.force_login(user)
    return c


def test_editor_writes_a_draft_and_publishes_it_in_both_languages(editor):
    c = client_for(editor)
    resp = c.post(reverse("info:article_new"), TEXT)
    article = Article.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse("info:article_edit", args=[article.pk])
    assert not article.published
    # the draft is not on the public list nor reachable by its address
    assert TEXT["title_zh"] not in client_for().get(reverse("info:article_list")).content.decode()
    assert client_for().get(reverse("info:article_detail", args=[article.pk])).status_code == 404
    resp = c.post(reverse("info:article_publish", args=[article.pk]), {"publish_at": ""})
    assert resp.status_code == 302
    zh = client_for().get(reverse("info:article_list")).content.decode()
    assert TEXT["title_zh"] in zh
    en = client_for(lang="en").get(reverse("info:article_detail", args=[article.pk])).content.decode()
    assert TEXT["title_en"] in en and "First paragraph: the targets." in en and "not available" not in en
    actions = list(
        ArticleRevision.objects.filter(article=article).order_by("number").values_list("action", flat=True)
    )
    assert actions == ["created", "published"]


def test_body_is_plain_text_in_paragraphs_never_raw_html(editor):
    article = make_article(editor)
    body = client_for().get(reverse("info:article_detail", args=[article.pk])).content.decode()
    assert "<p>第一段：方案目标。</p>" in body
    assert "&lt;b&gt;不是标签&lt;/b&gt;" in body and "<b>不是标签</b>" not in body


def test_missing_language_falls_back_with_a_visible_note(editor):
    article = make_article(editor, title_en="", body_en="")
    en = client_for(lang="en").get(reverse("info:article_detail", args=[article.pk])).content.decode()
    assert TEXT["title_zh"] in en
    assert "This text is not available in English; it is shown in Chinese." in en
    only_en = make_article(editor, title_zh="", body_zh="", title_en="English only notice")
    zh = client_for().get(reverse("info:article_detail", args=[only_en.pk])).content.decode()
    assert "English only notice" in zh and "此内容暂无中文版本，以下显示英文原文。" in zh


def test_scheduled_notice_is_public_only_from_its_time(editor):
    later = timezone.now() + timedelta(days=3)
    article = make_article(editor, when=later)
    assert article.published and article.is_scheduled
    assert client_for().get(reverse("info:article_detail", args=[article.pk])).status_code == 404
    assert TEXT["title_zh"] not in client_for().get(reverse("info:article_list")).content.decode()
    # the editor sees it marked as scheduled
    page = client_for(editor).get(reverse("info:manage")).content.decode()
    assert TEXT["title_zh"] in page and "定时发布" in page
    Article.objects.filter(pk=article.pk).update(publish_at=timezone.now() - timedelta(minutes=1))
    assert client_for().get(reverse("info:article_detail", args=[article.pk])).status_code == 200


def test_attachments_are_public_only_while_the_notice_is(editor):
    article = make_article(editor, publish=False)
    att = svc.do_add_attachment(editor, article, SimpleUploadedFile("方法学.pdf", PDF))
    url = reverse("info:attachment_file", args=[att.pk])
    assert client_for().get(url).status_code == 404
    assert client_for(make_user("owner_household")).get(url).status_code == 404
    assert client_for(editor).get(url).status_code == 200
    svc.do_publish_article(editor, article)
    resp = client_for().get(url)
    assert resp.status_code == 200 and b"".join(resp.streaming_content) == PDF
    assert resp["Content-Type"] == "application/pdf" and "attachment" in resp["Content-Disposition"]
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert not att.file.name.endswith("方法学.pdf")  # stored under a random name
    svc.do_unpublish_article(editor, article)
    assert client_for().get(url).status_code == 404


def test_a_renamed_executable_is_refused_and_nothing_is_stored(editor):
    article = make_article(editor)
    c = client_for(editor)
    resp = c.post(
        reverse("info:attachment_add", args=[article.pk]),
        {"file": SimpleUploadedFile("guide.pdf", b"MZ\x90\x00\x03 not a pdf")},
        follow=True,
    )
    assert "文件：文件内容不是有效的 .pdf 文件" in resp.content.decode()
    assert Attachment.objects.count() == 0


def test_others_may_not_write(editor):
    article = make_article(editor, publish=False)
    owner = make_user("owner_household")
    for user in (owner, make_user("reviewer_city")):
        c = client_for(user)
        assert c.get(reverse("info:manage")).status_code == 403
        assert c.post(reverse("info:article_new"), TEXT).status_code == 403
        assert c.post(reverse("info:article_publish", args=[article.pk])).status_code == 403
        assert c.get(reverse("info:article_detail", args=[article.pk])).status_code == 404
    assert client_for().get(reverse("info:manage")).status_code == 302  # to log in
    with pytest.raises(svc.NotAllowed):
        svc.do_save_article(owner, TEXT)
    article.refresh_from_db()
    assert not article.published and Article.objects.count() == 1
    # registry administrators edit too
    admin = make_user("registry_admin")
    assert client_for(admin).get(reverse("info:manage")).status_code == 200


def test_bad_input_names_the_field_and_changes_nothing(editor):
    c = client_for(editor)
    resp = c.post(reverse("info:article_new"), {**TEXT, "title_en": "", "category": "rumour"})
    body = resp.content.decode()
    assert resp.status_code == 400
    assert "分类：“rumour”不是可选项" in body
    assert "标题（英文）：该语言的正文需要同一语言的标题" in body
    assert Article.objects.count() == 0
    article = make_article(editor, publish=False, body_en="")
    resp = c.post(reverse("info:article_publish", args=[article.pk]), {"publish_at": ""})
    assert resp.status_code == 400 and "该语言的标题需要先填写正文才能发布" in resp.content.decode()
    resp = c.post(reverse("info:article_publish", args=[article.pk]), {"publish_at": "next tuesday"})
    assert resp.status_code == 400 and "发布时间" in resp.content.decode()
    article.refresh_from_db()
    assert not article.published


def test_english_editor_sees_english_errors(editor):
    resp = client_for(editor, "en").post(
        reverse("info:article_new"), {**TEXT, "title_zh": "", "title_en": ""}
    )
    body = resp.content.decode()
    assert "Title (Chinese): write the title and text in Chinese, English or both" in body


def test_search_and_category_filter(editor):
    make_article(editor)
    make_article(
        editor,
        category="template",
        title_zh="电表读数上传模板",
        title_en="Readings template",
        body_zh="CSV 模板",
        body_en="CSV template",
    )
    c = client_for()
    page = c.get(reverse("info:article_list"), {"category": "template"}).content.decode()
    assert "电表读数上传模板" in page and TEXT["title_zh"] not in page
    page = c.get(reverse("info:article_list"), {"q": "targets"}).content.decode()  # English words find it too
    assert TEXT["title_zh"] in page and "电表读数上传模板" not in page
    page = c.get(reverse("info:article_list"), {"q": "不存在的词"}).content.decode()
    assert "没有符合搜索条件的内容" in page


def test_revision_history_keeps_old_texts(editor):
    article = make_article(editor)
    svc.do_save_article(editor, {**TEXT, "title_zh": "修订后的标题"}, article)
    page = client_for(editor).get(reverse("info:article_edit", args=[article.pk])).content.decode()
    assert "修订后的标题" in page and TEXT["title_zh"] in page  # the old title in the history
    assert article.revisions.count() == 3
