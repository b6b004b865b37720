"""Demonstration projects: public list and detail, outcomes of linked PV systems computed from the platform's
monthly rollups and quantification (never typed), photos checked and re-encoded, cooperation requests without
log-in routed to the owner's inbox with an in-app notification, honeypot and rate limit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from lowcarbon.info import services as svc
from lowcarbon.info.models import CooperationRequest, DemoProject, Outcome, Photo
from lowcarbon.registry.models import Notification
from tests.factories import make_org, make_user
from tests.info.helpers import jpeg_with_gps, make_editor, make_project, png_bytes
from tests.registry.app_helpers import EF_CM, quantified_system

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

REQUEST = {
    "name": "黄志远",
    "organisation": "古镇镇教育事务指导中心",
    "contact": "0760-2233 4455",
    "message": "希望组织物理老师参观屋顶光伏。",
}


@pytest.fixture
def world(db, media_root):
    editor = make_editor()
    school = make_org("institution", name="小榄镇永宁中学")
    owner = make_user("owner_institution", org=school, real_name="周慧玲")
    colleague = make_user("owner_institution", org=school)
    system = quantified_system(org=school, kwh="8000", capacity_kwp="96")
    project = make_project(editor, school, owner, systems=[system.code])
    return {
        "editor": editor,
        "school": school,
        "owner": owner,
        "colleague": colleague,
        "system": system,
        "project": project,
    }


def client_for(user=None, lang: str | None = None, ip: str = "10.0.0.1") -> Client:  # type: ignore[no-untyped-def]
    c = Client(HTTP_ACCEPT_LANGUAGE=lang, REMOTE_ADDR=ip) if lang else Client(REMOTE_ADDR=ip)
    if user is not None:
        c.force_login(user)
    return c


def test_public_list_and_detail_with_outcomes_computed_from_platform_data(world):
    c = client_for()
    page = c.get(reverse("info:project_list")).content.decode()
    assert "永宁中学屋顶光伏科普示范点" in page
    page = c.get(reverse("info:project_detail", args=[world["project"].pk])).content.decode()
    # 12 months × 8,000 kWh metered; avoided = 96,000 kWh × EF_CM
    assert "96,000" in page or "96000" in page
    expected_t = (Decimal(96000) * EF_CM / 1000).quantize(Decimal("0.01"))
    assert f"{expected_t:,}" in page  # 63.03 tCO2e
    assert "平台计量" in page
    en = (
        client_for(lang="en").get(reverse("info:project_detail", args=[world["project"].pk])).content.decode()
    )
    assert "Metered generation" in en and "Yongning Middle School rooftop PV showcase" in en


def test_computed_outcomes_follow_the_current_quantification(world):
    c = svc.computed_outcomes(world["project"])
    assert c is not None and len(c.years) == 1
    year = c.years[0]
    assert year.full_year and year.generation_kwh == Decimal("96000")
    assert year.er_kg == Decimal(96000) * EF_CM
    assert c.capacity_kwp == Decimal("96") and c.methods


def test_unpublished_project_is_hidden_and_takes_no_requests(world):
    hidden = make_project(
        world["editor"], world["school"], world["owner"], published=False, name_zh="筹备中的项目"
    )
    assert "筹备中的项目" not in client_for().get(reverse("info:project_list")).content.decode()
    assert client_for().get(reverse("info:project_detail", args=[hidden.pk])).status_code == 404
    assert client_for().post(reverse("info:project_detail", args=[hidden.pk]), REQUEST).status_code == 404
    assert (
        client_for(world["editor"]).get(reverse("info:project_detail", args=[hidden.pk])).status_code == 200
    )
    assert CooperationRequest.objects.count() == 0


def test_request_without_login_reaches_the_owner_inbox_with_a_notification(world):
    url = reverse("info:project_detail", args=[world["project"].pk])
    resp = client_for().post(url, REQUEST, follow=True)
    assert resp.status_code == 200 and "您的请求已发送给" in resp.content.decode()
    req = CooperationRequest.objects.get()
    assert req.sender_ip == "10.0.0.1" and req.state == "new"
    note = Notification.objects.get(user=world["owner"])
    assert "古镇镇教育事务指导中心" in note.message and note.link.startswith(reverse("info:inbox"))
    assert not Notification.objects.filter(user=world["colleague"]).exists()  # the responsible person only
    owner = client_for(world["owner"])
    assert 'class="badge">1<' in owner.get(reverse("info:project_list")).content.decode()  # unread badge
    inbox = owner.get(reverse("info:inbox")).content.decode()
    assert "希望组织物理老师参观屋顶光伏。" in inbox and "0760-2233 4455" in inbox
    # the owner's colleague (same organisation) sees it too; someone else does not
    assert (
        "古镇镇教育事务指导中心" in client_for(world["colleague"]).get(reverse("info:inbox")).content.decode()
    )
    stranger = client_for(make_user("owner_enterprise", org=make_org()))
    assert stranger.get(reverse("info:inbox")).status_code == 403
    assert stranger.post(reverse("info:request_answer", args=[req.pk])).status_code == 404
    # the owner marks it answered
    resp = owner.post(
        reverse("info:request_answer", args=[req.pk]), {"answer_note": "已电话联系，6月5日参观"}, follow=True
    )
    req.refresh_from_db()
    assert (
        req.state == "answered" and req.answered_by == world["owner"] and req.answer_note.startswith("已电话")
    )
    assert "已回复" in resp.content.decode()
    # administrators see every request
    admin_inbox = client_for(make_user("registry_admin")).get(reverse("info:inbox")).content.decode()
    assert "古镇镇教育事务指导中心" in admin_inbox


def test_notification_is_in_the_recipient_language(world):
    world["owner"].preferred_language = "en"
    world["owner"].save()
    svc.do_send_request(world["project"], REQUEST, sender_ip="10.0.0.9")
    msg = Notification.objects.get(user=world["owner"]).message
    assert msg.startswith("New cooperation request for “Yongning Middle School rooftop PV showcase”")


def test_without_responsible_person_the_organisation_administrators_are_notified(world):
    project = make_project(world["editor"], world["school"], None, name_zh="无负责人项目")
    svc.do_send_request(project, REQUEST, sender_ip="10.0.0.2")
    assert Notification.objects.filter(user__in=[world["owner"], world["colleague"]]).count() == 2


def test_honeypot_and_missing_fields_are_refused_and_nothing_is_stored(world):
    url = reverse("info:project_detail", args=[world["project"].pk])
    resp = client_for().post(url, {**REQUEST, "website": "http://spam.example"})
    assert resp.status_code == 400 and "请求看起来是自动发送的" in resp.content.decode()
    resp = client_for().post(url, {**REQUEST, "contact": "", "message": ""})
    body = resp.content.decode()
    assert resp.status_code == 400 and "电话或电子邮箱：此项必填" in body and "留言：此项必填" in body
    assert "黄志远" in body  # what was typed is kept
    resp = client_for().post(url, {**REQUEST, "contact": "call me"})
    assert "请填写电话号码或电子邮箱地址" in resp.content.decode()
    assert CooperationRequest.objects.count() == 0 and Notification.objects.count() == 0


def test_rate_limit_by_address(world, settings):
    url = reverse("info:project_detail", args=[world["project"].pk])
    for _ in range(svc.REQUESTS_PER_HOUR):
        assert client_for(ip="10.9.9.9").post(url, REQUEST).status_code == 302
    resp = client_for(ip="10.9.9.9").post(url, REQUEST)
    assert resp.status_code == 429 and "过去一小时内来自您网络的请求过多" in resp.content.decode()
    assert client_for(ip="10.9.9.10").post(url, REQUEST).status_code == 302  # another address
    assert CooperationRequest.objects.count() == svc.REQUESTS_PER_HOUR + 1


def test_editor_creates_a_project_with_field_named_errors(world):
    c = client_for(world["editor"])
    resp = c.post(
        reverse("info:project_new"),
        {
            "kind": "castle",
            "name_zh": "",
            "name_en": "",
            "owner_org": "",
            "pv_systems": "PV-NOPE",
            "contact_email": "x@",
        },
    )
    body = resp.content.decode()
    assert resp.status_code == 400
    for text in (
        "类型：“castle”不是可选项",
        "名称（中文）：请填写中文或英文名称",
        "业主单位：此项必填",
        "关联光伏系统：“PV-NOPE”未找到",
        "联系邮箱：“x@”不是有效的电子邮箱地址",
    ):
        assert text in body, text
    other = make_user("owner_household")
    resp = c.post(
        reverse("info:project_new"),
        {
            "kind": "green_building",
            "name_zh": "绿色建筑",
            "owner_org": str(world["school"].pk),
            "owner_user": other.username,
        },
    )
    assert "平台负责人：此人须属于业主单位" in resp.content.decode()
    assert DemoProject.objects.count() == 1
    resp = c.post(
        reverse("info:project_new"),
        {
            "kind": "green_building",
            "name_zh": "绿色建筑",
            "owner_org": str(world["school"].pk),
            "community": "yongning",
        },
    )
    assert resp.status_code == 302 and DemoProject.objects.get(name_zh="绿色建筑").published is False


def test_only_editors_maintain_projects(world):
    p = world["project"]
    owner = client_for(world["owner"])
    assert owner.get(reverse("info:project_edit", args=[p.pk])).status_code == 403
    assert owner.post(reverse("info:project_publish", args=[p.pk]), {"published": "0"}).status_code == 403
    assert owner.post(reverse("info:outcome_add", args=[p.pk]), {"value": "1"}).status_code == 403
    assert owner.post(reverse("info:photo_add", args=[p.pk])).status_code == 403
    p.refresh_from_db()
    assert p.published


def test_typed_outcome_needs_value_unit_period_and_source(world):
    p = world["project"]
    c = client_for(world["editor"])
    resp = c.post(
        reverse("info:outcome_add", args=[p.pk]),
        {"indicator_zh": "参观人次", "value": "many", "unit": "人次"},
        follow=True,
    )
    body = resp.content.decode()
    assert "数值：“many”不是数字" in body and "期间：此项必填" in body and "来源：此项必填" in body
    assert Outcome.objects.count() == 0
    c.post(
        reverse("info:outcome_add", args=[p.pk]),
        {
            "indicator_zh": "参观人次",
            "indicator_en": "Visitors",
            "value": "1,250",
            "unit": "人次",
            "period": "2025",
            "source": "学校登记簿",
        },
    )
    page = client_for(lang="en").get(reverse("info:project_detail", args=[p.pk])).content.decode()
    assert "Visitors" in page and "1,250" in page and "学校登记簿" in page


def test_photos_are_checked_re_encoded_and_public_only_with_the_project(world):
    p = world["project"]
    c = client_for(world["editor"])
    resp = c.post(
        reverse("info:photo_add", args=[p.pk]),
        {"file": SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\nbroken")},
        follow=True,
    )
    assert "不是可读取的 JPEG、PNG 或 WebP 图片" in resp.content.decode()
    resp = c.post(
        reverse("info:photo_add", args=[p.pk]), {"file": SimpleUploadedFile("x.gif", b"GIF89a")}, follow=True
    )
    assert "不接受“.gif”类型的文件" in resp.content.decode()
    assert Photo.objects.count() == 0
    c.post(
        reverse("info:photo_add", args=[p.pk]),
        {"file": SimpleUploadedFile("roof.jpg", jpeg_with_gps()), "caption_zh": "屋顶"},
    )
    photo = Photo.objects.get()
    from PIL import Image

    with Image.open(photo.image.open("rb")) as img:
        assert not img.getexif()  # location and camera data removed
    with Image.open(photo.thumbnail.open("rb")) as thumb:
        assert thumb.width <= 480 and thumb.height <= 360
    resp = client_for().get(reverse("info:photo_thumb", args=[photo.pk]))
    assert resp.status_code == 200 and resp["Content-Type"] == "image/jpeg"
    svc.do_set_project_published(world["editor"], p, False)
    assert client_for().get(reverse("info:photo_file", args=[photo.pk])).status_code == 404
    assert c.get(reverse("info:photo_file", args=[photo.pk])).status_code == 200


def test_png_with_transparency_is_kept_as_png(world):
    photo = svc.do_add_photo(
        world["editor"], world["project"], SimpleUploadedFile("logo.png", png_bytes(mode="RGBA")), {}
    )
    assert photo.content_type == "image/png" and photo.image.name.endswith(".png")
