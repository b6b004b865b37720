"""Test data for the information service: editors, notices, demonstration projects, a small PNG."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from lowcarbon.accounts.models import Organisation, User
from lowcarbon.info import services as svc
from lowcarbon.info.models import Article, DemoProject
from tests.factories import make_org, make_user

TEXT = {
    "category": "policy",
    "title_zh": "关于印发低碳发展工作实施方案的通知",
    "title_en": "Notice on the low-carbon development plan",
    "body_zh": "第一段：方案目标。\n\n第二段：<b>不是标签</b>。",
    "body_en": "First paragraph: the targets.\n\nSecond paragraph.",
}


def make_editor(**extra: Any) -> User:
    return make_user("content_editor", **extra)


def make_article(
    editor: User, *, publish: bool = True, when: datetime | None = None, **overrides: str
) -> Article:
    article = svc.do_save_article(editor, {**TEXT, **overrides})
    if publish:
        article = svc.do_publish_article(editor, article, when)
    return article


def make_project(
    editor: User,
    owner_org: Organisation | None = None,
    owner_user: User | None = None,
    *,
    published: bool = True,
    systems: list[str] | None = None,
    **overrides: Any,
) -> DemoProject:
    org = owner_org or make_org("institution", name="小榄镇永宁中学")
    data = {
        "kind": "pv_showcase",
        "name_zh": "永宁中学屋顶光伏科普示范点",
        "name_en": "Yongning Middle School rooftop PV showcase",
        "description_zh": "教学楼屋顶96 kWp光伏。",
        "description_en": "A 96 kWp roof on the teaching building.",
        "owner_org": str(org.pk),
        "owner_user": owner_user.username if owner_user else "",
        "pv_systems": systems or [],
        **overrides,
    }
    project = svc.do_save_project(editor, data)
    if published:
        project = svc.do_set_project_published(editor, project, True)
    return project


def png_bytes(size: tuple[int, int] = (640, 400), mode: str = "RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, (40, 120, 60) if mode == "RGB" else (40, 120, 60, 200)).save(out, format="PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG carrying EXIF metadata (a GPS tag), as phone photos do."""
    from PIL import Image

    img = Image.new("RGB", (800, 600), (200, 180, 120))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x8825] = {1: "N", 2: (22.0, 40.0, 12.0)}  # GPS latitude
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def isolation_request(owner: User) -> Any:
    """A published project owned by `owner` (through a new organisation) with one cooperation request to it."""
    org = make_org("institution")
    from lowcarbon.accounts.models import Membership

    Membership.objects.get_or_create(user=owner, organisation=org)
    project = make_project(make_editor(), org, owner)
    return svc.do_send_request(
        project,
        {"name": "王敏", "organisation": "东凤镇人民政府", "contact": "0760-1234567", "message": "参观"},
        sender_ip="10.1.1.1",
    )
