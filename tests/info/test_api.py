"""API under /api/v1/info/: public reading (drafts hidden), editor writes with field-named refusals, cooperation
requests without log-in, the owner's inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from lowcarbon.info.models import Article, CooperationRequest
from lowcarbon.registry.models import Notification
from tests.factories import make_org, make_user
from tests.info.helpers import TEXT, make_article, make_editor, make_project

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def editor(db, media_root):
    return make_editor()


def api(user=None, lang: str = "zh-hans") -> APIClient:  # type: ignore[no-untyped-def]
    c = APIClient(HTTP_ACCEPT_LANGUAGE=lang)
    if user is not None:
        c.force_authenticate(user)
    return c


def test_public_list_shows_only_public_notices(editor):
    public = make_article(editor)
    make_article(editor, publish=False, title_zh="草稿")
    make_article(editor, when=timezone.now() + timedelta(days=1), title_zh="定时")
    resp = api().get("/api/v1/info/articles/")
    assert resp.status_code == 200
    assert [a["id"] for a in resp.json()["results"]] == [public.pk]
    detail = api(lang="en").get(f"/api/v1/info/articles/{public.pk}/").json()
    assert detail["title"] == TEXT["title_en"] and detail["fallback"] is False
    drafts = Article.objects.exclude(pk=public.pk)
    for a in drafts:
        assert api().get(f"/api/v1/info/articles/{a.pk}/").status_code == 404
    assert len(api(editor).get("/api/v1/info/articles/").json()["results"]) == 3


def test_filters(editor):
    make_article(editor)
    make_article(
        editor, category="template", title_zh="模板", title_en="Template", body_zh="模板", body_en="Template"
    )
    assert api().get("/api/v1/info/articles/?category=template").json()["count"] == 1
    assert api().get("/api/v1/info/articles/?q=targets").json()["count"] == 1


def test_editor_creates_edits_publishes_and_attaches(editor):
    c = api(editor)
    resp = c.post(
        "/api/v1/info/articles/", {"category": "news", "title_zh": "新闻", "body_zh": "正文"}, format="json"
    )
    assert resp.status_code == 201 and resp.json()["published"] is False
    pk = resp.json()["id"]
    resp = c.patch(f"/api/v1/info/articles/{pk}/", {"title_en": "News", "body_en": "Text"}, format="json")
    assert resp.status_code == 200 and resp.json()["title_zh"] == "新闻" and resp.json()["title_en"] == "News"
    resp = c.post(
        f"/api/v1/info/articles/{pk}/attachments/",
        {"file": SimpleUploadedFile("t.csv", b"a,b\n1,2\n")},
        format="multipart",
    )
    assert resp.status_code == 201
    resp = c.post(f"/api/v1/info/articles/{pk}/publish/", {"publish_at": ""}, format="json")
    assert resp.status_code == 200 and resp.json()["is_public"] is True
    att_url = resp.json()["attachments"][0]["url"]
    from django.test import Client

    assert Client().get(att_url).status_code == 200
    resp = c.post(f"/api/v1/info/articles/{pk}/unpublish/")
    assert resp.status_code == 200 and Client().get(att_url).status_code == 404


def test_writes_refused_with_field_named_reasons(editor):
    resp = api(editor, "en").post(
        "/api/v1/info/articles/", {"category": "news", "body_en": "orphan"}, format="json"
    )
    assert resp.status_code == 400
    assert resp.json()["errors"]["title_en"] == ["a text in this language needs a title in the same language"]
    assert Article.objects.count() == 0
    owner = make_user("owner_household")
    assert api(owner).post("/api/v1/info/articles/", TEXT, format="json").status_code == 403
    assert api().post("/api/v1/info/articles/", TEXT, format="json").status_code in (401, 403)
    assert Article.objects.count() == 0


def test_requests_without_login_and_the_inbox(editor):
    org = make_org("institution")
    owner = make_user("owner_institution", org=org)
    project = make_project(editor, org, owner)
    payload = {
        "name": "王敏",
        "organisation": "东凤镇人民政府",
        "contact": "wang@example.cn",
        "message": "希望参观",
    }
    resp = api().post(f"/api/v1/info/projects/{project.pk}/requests/", payload, format="json")
    assert resp.status_code == 201
    assert Notification.objects.filter(user=owner).count() == 1
    resp = api().post(
        f"/api/v1/info/projects/{project.pk}/requests/", {**payload, "website": "x"}, format="json"
    )
    assert resp.status_code == 400 and resp.json()["code"] == "honeypot"
    detail = api().get(f"/api/v1/info/projects/{project.pk}/").json()
    assert detail["name"] == "永宁中学屋顶光伏科普示范点" and detail["computed_outcomes"] is None
    inbox = api(owner).get("/api/v1/info/requests/").json()
    assert inbox["count"] == 1 and inbox["results"][0]["organisation"] == "东凤镇人民政府"
    other = make_user("owner_household")
    assert api(other).get("/api/v1/info/requests/").json()["count"] == 0
    req = CooperationRequest.objects.get()
    assert api(other).post(f"/api/v1/info/requests/{req.pk}/answer/").status_code == 404
    resp = api(owner).post(
        f"/api/v1/info/requests/{req.pk}/answer/", {"answer_note": "已回电"}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["state"] == "answered"
    assert api().get("/api/v1/info/requests/").status_code in (401, 403)
