"""Hardening: CSRF tokens on every form, session cookie settings, the password policy on every path that sets a
password, log-in rate limiting (pages, back office, API token), and the audit log."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from lowcarbon.accounts.models import AuditEvent, Role, RoleGrant, User
from lowcarbon.demo import DEMO_PASSWORD
from tests.factories import PASSWORD, make_user
from tests.security.helpers import ALICE, ANON, body_text, build_world
from tests.security.routes import route_urls

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
CSRF_FIELD = 'name="csrfmiddlewaretoken"'


# --- CSRF ----------------------------------------------------------------------------------------------------------


def _post_forms(html: str) -> list[str]:
    return [m.group(0) for m in FORM.finditer(html) if re.search(r"method=[\"']?post", m.group(1), re.I)]


def test_every_post_form_carries_a_csrf_token_and_is_refused_without_it(media_root):
    """Every page is rendered for the people who may see it; each POST form in it has the token field, and
    posting that form's action without the token (the browser of another site) is refused with 403."""
    w = build_world()
    urls = route_urls(w)
    seen_forms = 0
    actions: set[str] = set()
    viewers = ["registry_admin", ALICE, "content_editor", "aggregator", "reviewer_city", ANON]
    for name, url in urls.items():
        if url.startswith("/api/") or name in ("logout", "account_token", "set_language"):
            continue
        if url.endswith((".pdf", ".xlsx", ".csv", ".json")) or "/photos/" in url or "/attachments/" in url:
            continue
        for actor in viewers:
            resp = w.client(actor).get(url)
            if resp.status_code != 200:
                continue
            for form in _post_forms(body_text(resp)):
                seen_forms += 1
                assert CSRF_FIELD in form, (
                    f"{name} as {actor}: a POST form without the CSRF token:\n{form[:300]}"
                )
                m = re.search(r"action=\"([^\"]*)\"", form[:500])
                actions.add((m.group(1) if m and m.group(1) else url).replace("&amp;", "&"))
    assert seen_forms > 40 and len(actions) > 20, (seen_forms, len(actions))
    for actor in ("registry_admin", ALICE, ANON):
        strict = Client(enforce_csrf_checks=True)
        if actor != ANON:
            strict.force_login(w.people[actor])
        for action in sorted(actions):
            resp = strict.post(action, {"note": "x"})
            assert resp.status_code == 403, f"{action} as {actor} without a CSRF token: {resp.status_code}"


def test_api_with_a_session_needs_the_csrf_token_but_a_token_client_does_not():
    user = make_user(Role.REVIEWER_CITY)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.post("/api/v1/quantify/", {}, content_type="application/json").status_code == 403
    from rest_framework.authtoken.models import Token

    api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api.post("/api/v1/quantify/", {}, content_type="application/json").status_code != 403


# --- sessions ------------------------------------------------------------------------------------------------------


def test_session_cookie_is_http_only_same_site_lax_and_expires():
    make_user(username="sess")
    c = Client()
    resp = c.post("/login/", {"username": "sess", "password": PASSWORD})
    assert resp.status_code == 302
    cookie = resp.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert 0 < int(cookie["max-age"]) <= 12 * 3600
    assert settings.CSRF_COOKIE_SAMESITE == "Lax"


def test_cookies_are_secure_when_served_over_https():
    import os
    import subprocess
    import sys

    code = (
        "import django;django.setup();from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)"
    )
    env = {**os.environ, "LOWCARBON_HTTPS": "1", "DJANGO_SETTINGS_MODULE": "lowcarbon.config.settings"}
    env.pop("LOWCARBON_TEST_DATABASE_URL_ACTIVE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]


# --- passwords -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["short-pw1", "1234567890123", "password1234", "changer-2026", "qwertyuiop"])
def test_weak_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak, User(username="changer-2026"))


def test_demo_and_test_passwords_stay_valid():
    validate_password(DEMO_PASSWORD, User(username="demo_owner"))
    validate_password(PASSWORD, User(username="someone"))
    assert DEMO_PASSWORD == "xiaolan-demo-2025"


def test_password_change_page_applies_the_policy():
    user = make_user(username="changer")
    c = Client()
    c.force_login(user)
    resp = c.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert resp.status_code == 200 and "new_password2" in resp.context["form"].errors
    new = "Hong-mian-2026-xl"
    resp = c.post(
        "/account/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert resp.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert AuditEvent.objects.filter(kind="password_changed", actor=user).exists()


def test_financier_sign_up_applies_the_policy():
    data = {
        "username": "bank1",
        "real_name": "黄经理",
        "password": "123456",
        "org_name": "小榄农商银行",
        "credit_code": "",
        "phone": "13800000000",
    }
    resp = Client().post("/finance/financiers/signup/", data)
    assert resp.status_code == 200
    assert not User.objects.filter(username="bank1").exists()


def test_back_office_user_creation_and_password_change_apply_the_policy():
    admin = make_user(username="root", is_staff=True, is_superuser=True)
    c = Client()
    c.force_login(admin)
    resp = c.post(
        "/admin/accounts/user/add/",
        {"username": "weakling", "password1": "abc12345", "password2": "abc12345", "usable_password": "true"},
    )
    assert resp.status_code == 200 and not User.objects.filter(username="weakling").exists()
    target = make_user(username="target")
    resp = c.post(
        f"/admin/accounts/user/{target.pk}/password/", {"password1": "987654321", "password2": "987654321"}
    )
    assert resp.status_code == 200
    target.refresh_from_db()
    assert target.check_password(PASSWORD)


# --- log-in rate limiting ------------------------------------------------------------------------------------------


def test_five_failures_lock_the_user_name_from_that_address_for_a_while(settings):
    settings.LANGUAGE_CODE = "en"
    make_user(username="victim")
    c = Client(HTTP_USER_AGENT="attack-bot/1.0")
    for _ in range(5):
        resp = c.post("/login/", {"username": "victim", "password": "wrong-password"})
        assert resp.status_code == 200 and "_auth_user_id" not in c.session
    resp = c.post("/login/", {"username": "victim", "password": PASSWORD})
    assert resp.status_code == 200 and "_auth_user_id" not in c.session
    assert "Too many failed log-in attempts" in resp.content.decode()
    # Chinese by default
    resp = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(
        "/login/", {"username": "victim", "password": PASSWORD}
    )
    assert "登录失败次数过多" in resp.content.decode()
    # the back office refuses too, and another address is not affected
    assert Client().post("/admin/login/", {"username": "victim", "password": PASSWORD}).status_code == 200
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert other.post("/login/", {"username": "victim", "password": PASSWORD}).status_code == 302
    kinds = list(AuditEvent.objects.filter(username="victim").values_list("kind", flat=True))
    assert kinds.count("login_failed") == 5 and "login_throttled" in kinds and "login_succeeded" in kinds
    failed = AuditEvent.objects.filter(username="victim", kind="login_failed").first()
    assert failed.ip == "127.0.0.1" and failed.user_agent == "attack-bot/1.0"


def test_the_lock_ends_after_the_window(monkeypatch):
    from lowcarbon.accounts import throttle

    make_user(username="patient")
    c = Client()
    for _ in range(5):
        c.post("/login/", {"username": "patient", "password": "nope-nope-nope"})
    assert throttle.is_locked("patient", "127.0.0.1")
    real = throttle.time.time
    monkeypatch.setattr(throttle.time, "time", lambda: real() + throttle.WINDOW + 1)
    assert not throttle.is_locked("patient", "127.0.0.1")
    assert c.post("/login/", {"username": "patient", "password": PASSWORD}).status_code == 302


def test_api_token_endpoint_gives_the_token_and_is_rate_limited_too():
    user = make_user(username="gateway")
    api = Client()
    resp = api.post("/api/v1/auth/token/", {"username": "gateway", "password": PASSWORD})
    assert resp.status_code == 200
    key = resp.json()["token"]
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/me/").json()["username"] == "gateway"
    for _ in range(5):
        assert api.post("/api/v1/auth/token/", {"username": "gateway", "password": "bad"}).status_code == 400
    resp = api.post("/api/v1/auth/token/", {"username": "gateway", "password": PASSWORD})
    assert resp.status_code == 429 and "token" not in resp.json()
    # the lock is per user name and address: the same name locks the log-in page as well
    assert Client().post("/login/", {"username": "gateway", "password": PASSWORD}).status_code == 200
    assert AuditEvent.objects.filter(actor=user, kind="login_succeeded").exists()


# --- audit log -----------------------------------------------------------------------------------------------------


def test_administrative_acts_are_audited(media_root):
    from django.utils import timezone

    from lowcarbon.core.params import set_parameter
    from lowcarbon.info import services as info_svc
    from lowcarbon.market import services as market_svc
    from lowcarbon.market.models import Alert
    from lowcarbon.registry import ledger

    w = build_world()
    admin = w.people[Role.REGISTRY_ADMIN]
    issued = AuditEvent.objects.filter(kind="units_issued", target=w["issued"].code).get()
    assert issued.actor == admin and issued.detail["quantity"] == 10
    # role grant and withdrawal
    grant = RoleGrant.objects.create(user=w.people[ALICE], role=Role.BUYER)
    grant.delete()
    assert AuditEvent.objects.filter(kind="role_granted", target="alice", detail__role="buyer").exists()
    assert AuditEvent.objects.filter(kind="role_revoked", target="alice").exists()
    # parameter change
    set_parameter("market_band", Decimal("0.2"), date(2026, 1, 1), "test", user=admin)
    assert AuditEvent.objects.filter(
        kind="parameter_changed", actor=admin, target__startswith="market_band"
    ).exists()
    # publication
    info_svc.do_publish_article(w.people[Role.CONTENT_EDITOR], w["draft_article"])
    info_svc.do_unpublish_article(w.people[Role.CONTENT_EDITOR], w["article"])
    assert AuditEvent.objects.filter(
        kind="content_published", target=f"article {w['draft_article'].pk}"
    ).exists()
    assert AuditEvent.objects.filter(kind="content_unpublished", target=f"article {w['article'].pk}").exists()
    info_svc.do_set_project_published(w.people[Role.CONTENT_EDITOR], w["demo_project"], False)
    assert AuditEvent.objects.filter(
        kind="content_unpublished", target=f"project {w['demo_project'].pk}"
    ).exists()
    # offset profile, surveillance review
    market_svc.do_set_offset_profile(
        account=w["account"],
        year=2025,
        verified_emissions_t=1000,
        annual_cap_t="",
        note="核查报告",
        actor=admin,
    )
    assert AuditEvent.objects.filter(kind="offset_profile", actor=admin).exists()
    alert = Alert.objects.create(kind="price_deviation", details={})
    market_svc.do_review_alert(alert=alert, actor=admin, note="正常波动")
    assert AuditEvent.objects.filter(kind="alert_reviewed", actor=admin).exists()
    # cancellation of issued units (a second administrator: four eyes)
    from tests.registry.cert_helpers import issue

    bob = make_user(Role.OWNER_HOUSEHOLD)
    from tests.factories import make_system

    app = issue([(make_system(bob), 3, ledger.account_for_user(bob))], applicant=bob).application
    ledger.do_cancel(application=app, reason="录入错误", actor=admin)
    cancel = AuditEvent.objects.get(kind="units_cancelled", target=app.code)
    assert cancel.actor == admin and cancel.detail["reason"] == "录入错误"
    assert timezone.now() >= cancel.at


def test_back_office_changes_are_audited_with_the_request():
    root = make_user(username="root2", is_staff=True, is_superuser=True)
    target = make_user(username="promoted")
    c = Client(HTTP_USER_AGENT="Firefox/140")
    c.force_login(root)
    resp = c.post(
        f"/admin/accounts/user/{target.pk}/change/",
        {
            "username": "promoted",
            "real_name": "新管理员",
            "phone": "",
            "preferred_language": "zh-hans",
            "is_active": "on",
            "date_joined_0": "2025-01-01",
            "date_joined_1": "00:00:00",
            "role_grants-TOTAL_FORMS": "1",
            "role_grants-INITIAL_FORMS": "0",
            "role_grants-0-role": "registry_admin",
            "role_grants-0-organisation": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    grant = AuditEvent.objects.get(kind="role_granted", target="promoted")
    assert grant.actor == root and grant.ip == "127.0.0.1" and grant.user_agent == "Firefox/140"
    assert AuditEvent.objects.filter(kind="admin_action", actor=root, detail__action="change").exists()


def test_audit_page_is_for_registry_administrators():
    admin = make_user(Role.REGISTRY_ADMIN, username="auditor")
    Client().post("/login/", {"username": "auditor", "password": "wrong-password"})
    c = Client()
    c.force_login(admin)
    resp = c.get("/account/audit/?kind=login_failed")
    assert resp.status_code == 200
    text = resp.content.decode()
    assert "auditor" in text and "127.0.0.1" in text
    assert c.get("/account/audit/?q=auditor&page=2").status_code == 200
    other = Client()
    other.force_login(make_user(Role.REVIEWER_CITY))
    assert other.get("/account/audit/").status_code == 403
    assert Client().get("/account/audit/").status_code == 302
