"""Application pages: guidance and its PDF, the new-application page with its checklist and estimate, the detail
page with the shares and timeline, actions, the report, the queues and notifications; Chinese by default, English
on request; another owner never reaches an application."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lowcarbon.accounts.models import Role
from lowcarbon.registry import applications as svc
from lowcarbon.registry.models import Application, Notification
from tests.factories import make_user
from tests.registry.app_helpers import (
    TINY_PDF,
    YEAR,
    bundle_world,
    pdf_font_families,
    quantified_system,
    ready_application,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def world(db, media_root):
    return bundle_world(3)


def client_for(user, lang: str | None = None) -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE=lang) if lang else Client()
    c.force_login(user)
    return c


def _lang(resp) -> str:
    m = re.search(r'<html lang="([^"]+)"', resp.content.decode())
    return m.group(1) if m else ""


def test_guidance_is_public_chinese_by_default_and_english_on_request():
    resp = Client().get(reverse("registry:guidance"))
    assert resp.status_code == 200 and _lang(resp) == "zh-hans"
    assert "登录" in resp.content.decode()  # the page frame is in Chinese
    resp = Client(HTTP_ACCEPT_LANGUAGE="en").get(reverse("registry:guidance"))
    body = resp.content.decode()
    assert _lang(resp) == "en" and "Who may apply" in body and "Plausibility flags cleared" in body


def test_guidance_pdf():
    resp = Client().get(reverse("registry:guidance_pdf"))
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-") and "Noto Sans CJK SC" in pdf_font_families(resp.content)


def test_guidance_checklist_of_own_systems(world):
    c = client_for(world.aggregator, "en")
    resp = c.get(reverse("registry:guidance"), {"first": f"{YEAR}-01", "last": f"{YEAR}-12"})
    body = resp.content.decode()
    for code in world.codes:
        assert code in body
    resp = c.get(
        reverse("registry:guidance"), {"first": f"{YEAR}-01", "last": f"{YEAR}-12", "system": world.codes[0]}
    )
    body = resp.content.decode()
    assert f'id="checklist-{world.codes[0]}"' in body and "can be claimed for" in body
    # a system the person may not see
    other = quantified_system(make_user(Role.OWNER_HOUSEHOLD))
    assert c.get(reverse("registry:guidance"), {"system": other.code}).status_code == 404


def test_new_application_page_creates_a_bundle(world):
    c = client_for(world.aggregator, "en")
    resp = c.get(
        reverse("registry:application_new"), {"kind": "bundle", "first": f"{YEAR}-01", "last": f"{YEAR}-12"}
    )
    body = resp.content.decode()
    assert resp.status_code == 200 and 'id="estimate"' in body
    assert all(f'value="{code}"' in body for code in world.codes)
    resp = c.post(
        reverse("registry:application_new"),
        {
            "kind": "bundle",
            "first": f"{YEAR}-01",
            "last": f"{YEAR}-12",
            "systems": world.codes,
            "op": "create",
        },
    )
    app = Application.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse(
        "registry:application_detail", args=[app.code]
    )
    # a second attempt names the system, the period and the reason
    resp = c.post(
        reverse("registry:application_new"),
        {
            "kind": "bundle",
            "first": f"{YEAR}-06",
            "last": f"{YEAR}-06",
            "systems": world.codes[:1],
            "op": "create",
        },
    )
    body = resp.content.decode()
    assert resp.status_code == 200 and 'id="refusals"' in body
    assert world.codes[0] in body and f"{YEAR}-06" in body and app.code in body
    assert Application.objects.count() == 1


def test_detail_page_shares_actions_and_timeline(world):
    app = ready_application(world.aggregator, world.codes)
    c = client_for(world.aggregator)
    body = c.get(reverse("registry:application_detail", args=[app.code])).content.decode()
    assert _lang_of(body) == "zh-hans" and "草稿" in body  # state label in Chinese
    assert 'id="action-submit"' in body and 'id="timeline"' in body
    for code in world.codes:
        assert f'data-system="{code}"' in body
    resp = c.post(
        reverse("registry:application_action", args=[app.code]), {"action": "submit", "comment": "请审核"}
    )
    assert resp.status_code == 302
    app.refresh_from_db()
    assert app.state == "submitted"
    # the household sees the application with its own share marked, and no actions
    h = client_for(world.households[0])
    body = h.get(reverse("registry:application_detail", args=[app.code])).content.decode()
    assert 'class="mine"' in body and 'id="action-' not in body
    resp = h.post(reverse("registry:application_action", args=[app.code]), {"action": "withdraw"})
    app.refresh_from_db()
    assert resp.status_code == 302 and app.state == "submitted"


def _lang_of(body: str) -> str:
    m = re.search(r'<html lang="([^"]+)"', body)
    return m.group(1) if m else ""


def test_report_generate_and_download(world):
    app = svc.do_create_application(
        world.aggregator,
        system_codes=world.codes,
        first_month=f"{YEAR}-01",
        last_month=f"{YEAR}-12",
        kind="bundle",
    )
    c = client_for(world.aggregator)
    url = reverse("registry:application_report", args=[app.code])
    assert c.get(url).status_code == 404  # none yet
    assert c.post(url, {"generate": "1"}).status_code == 302
    resp = c.get(url)
    data = b"".join(resp.streaming_content)
    assert resp.status_code == 200 and data.startswith(b"%PDF-")
    from django.core.files.uploadedfile import SimpleUploadedFile

    c.post(url, {"report": SimpleUploadedFile("own.pdf", TINY_PDF, content_type="application/pdf")})
    app.refresh_from_db()
    assert not app.report_generated


def test_queues_and_issuance_through_pages(world):
    app = ready_application(world.aggregator, world.codes)
    svc.do_transition(app, "submit", world.aggregator)
    Application.objects.filter(pk=app.pk).update(state_since=timezone.now() - timedelta(days=3, hours=1))
    r = client_for(world.reviewer, "en")
    body = r.get(reverse("registry:review_queue")).content.decode()
    assert app.code in body and '<td class="num days">3</td>' in body
    assert client_for(world.households[0]).get(reverse("registry:review_queue")).status_code == 403
    r.post(
        reverse("registry:application_action", args=[app.code]), {"action": "start_review", "next": "queue"}
    )
    r.post(reverse("registry:application_action", args=[app.code]), {"action": "approve", "comment": "同意"})
    app.refresh_from_db()
    assert app.state == "approved"
    a = client_for(world.admin, "en")
    body = a.get(reverse("registry:issue_queue")).content.decode()
    assert f'id="issue-{app.code}"' in body
    assert client_for(world.reviewer).get(reverse("registry:issue_queue")).status_code == 403
    resp = a.post(reverse("registry:issue_queue"), {"code": app.code, "client_key": "k1"})
    app.refresh_from_db()
    assert resp.status_code == 302 and app.state == "issued"


def test_notifications_page(world):
    app = ready_application(world.aggregator, world.codes)
    c = client_for(world.aggregator)
    body = c.get(reverse("registry:notifications")).content.decode()
    assert app.code in body and 'class="unread"' in body
    c.post(reverse("registry:notifications"))
    assert not Notification.objects.filter(user=world.aggregator, read_at__isnull=True).exists()


def test_another_owner_gets_404(world):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = quantified_system(owner)
    app = svc.do_create_application(
        owner, system_codes=[system.code], first_month=f"{YEAR}-01", last_month=f"{YEAR}-12", kind="single"
    )
    other = client_for(make_user(Role.OWNER_HOUSEHOLD))
    for name in ("registry:application_detail", "registry:application_report"):
        assert other.get(reverse(name, args=[app.code])).status_code == 404, name
    resp = other.post(reverse("registry:application_action", args=[app.code]), {"action": "withdraw"})
    assert resp.status_code == 404
    assert app.code not in other.get(reverse("registry:application_list")).content.decode()
    # the aggregator of another bundle does not see it either
    assert (
        client_for(world.aggregator).get(reverse("registry:application_detail", args=[app.code])).status_code
        == 404
    )
    app.refresh_from_db()
    assert app.state == "draft"


def test_api_create_act_and_checklist(world):
    from rest_framework.test import APIClient

    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(world.aggregator)
    resp = api.post(
        "/api/v1/applications/",
        {"kind": "bundle", "systems": world.codes, "first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12"},
        format="json",
    )
    assert resp.status_code == 201, resp.content
    code = resp.json()["code"]
    assert len(resp.json()["members"]) == 3 and resp.json()["available_actions"] == ["submit", "withdraw"]
    resp = api.post(f"/api/v1/applications/{code}/actions/", {"action": "submit"}, format="json")
    assert resp.status_code == 400 and resp.json()["code"] == "incomplete"
    assert (
        api.post(f"/api/v1/applications/{code}/report/", {"generate": True}, format="json").status_code == 200
    )
    assert (
        api.post(
            f"/api/v1/applications/{code}/actions/", {"action": "sign_commitment"}, format="json"
        ).status_code
        == 200
    )
    resp = api.get(f"/api/v1/applications/{code}/report/")
    assert resp.status_code == 200 and b"".join(resp.streaming_content).startswith(b"%PDF-")
    resp = api.post(f"/api/v1/applications/{code}/actions/", {"action": "submit"}, format="json")
    assert resp.status_code == 200 and resp.json()["state"] == "submitted"
    assert [t["to_state"] for t in resp.json()["transitions"]] == ["draft", "submitted"]
    resp = api.post(
        "/api/v1/applications/",
        {
            "kind": "bundle",
            "systems": world.codes[:1],
            "first_month": f"{YEAR}-03",
            "last_month": f"{YEAR}-04",
        },
        format="json",
    )
    assert resp.status_code == 409
    err = resp.json()["errors"][0]
    assert (err["system"], err["first_month"], err["last_month"], err["code"]) == (
        world.codes[0],
        f"{YEAR}-03",
        f"{YEAR}-04",
        "already_claimed",
    )
    resp = api.get(
        "/api/v1/applications/checklist/",
        {"system": world.codes[0], "first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12"},
    )
    assert resp.status_code == 200 and {i["code"] for i in resp.json()["items"]} >= {
        "not_claimed",
        "quantified",
    }
    reviewer = APIClient()
    reviewer.force_authenticate(world.reviewer)
    resp = reviewer.get("/api/v1/applications/queue/")
    assert [i["code"] for i in resp.json()] == [code]
    resp = reviewer.post(f"/api/v1/applications/{code}/actions/", {"action": "approve"}, format="json")
    assert resp.status_code == 409 and resp.json()["code"] == "wrong_state"
