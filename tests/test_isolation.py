"""Owner-to-owner isolation on every page and endpoint: another owner gets 404/403 for objects and never sees
them in lists; every route of the project is classified here, so a new route must be added to be tested."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from lowcarbon.metering.models import IngestBatch, Meter
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.services import do_ingest
from lowcarbon.pv.models import PlausibilityFlag
from lowcarbon.registry import ledger
from tests.factories import PASSWORD, make_system, make_user
from tests.finance.helpers import isolation_project
from tests.info.helpers import isolation_request
from tests.market.helpers import market_objects
from tests.registry.app_helpers import isolation_application
from tests.registry.cert_helpers import issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

# routes reachable without log-in, or not about any one owner's data
PUBLIC_OR_GENERIC = {
    "home",
    # one's own password, the audit log (registry administrators), the token exchange: tests/security
    "account_password",
    "audit_log",
    "api-token",
    "login",
    "logout",
    "account",
    "account_token",
    "set_language",
    "javascript-catalog",
    "api-schema",
    "api-docs",
    "api-redoc",
    "api-me",
    "api-methodologies",
    "api-grid-factors",
    "api-community-list",
    "api-community-detail",
    "methodology:factors",
    "metering:upload",
    "metering:sample_csv",
    "pv:register",
    "pv:bulk_register",
    "pv:bulk_template",
    "api-readings-batch",
    "api-quantify",
    "api-pv-system-bulk",
    "registry:transfer",
    "registry:retire",
    "registry:admin_cancel",
    "registry:public_search",
    "registry:public_block",
    "registry:public_retirement",
    "api-registry-transfers",
    "api-registry-retirements",
    "api-registry-blocks",
    "api-registry-retirement-detail",
    "registry:guidance",
    "registry:guidance_pdf",
    "registry:application_new",
    "registry:review_queue",
    "registry:issue_queue",
    "registry:notifications",
    "api-application-queue",
    # finance: creation, the administrators' pipeline, financier sign-up and the public estimator (tests/finance)
    "finance:project_new",
    "finance:pipeline",
    "finance:financier_signup",
    "finance:estimator",
    "api-finance-pipeline",
    "api-finance-estimate",
    # information service: public pages, and editor pages checked by role (tests/info)
    "info:article_list",
    "info:article_detail",
    "info:attachment_file",
    "info:project_list",
    "info:project_detail",
    "info:photo_file",
    "info:photo_thumb",
    "info:manage",
    "info:article_new",
    "info:article_edit",
    "info:article_publish",
    "info:article_unpublish",
    "info:attachment_add",
    "info:attachment_delete",
    "info:project_new",
    "info:project_edit",
    "info:project_publish",
    "info:outcome_add",
    "info:outcome_delete",
    "info:photo_add",
    "info:photo_delete",
    "api-info-article-list",
    "api-info-article-detail",
    "api-info-article-publish",
    "api-info-article-unpublish",
    "api-info-article-attachments",
    "api-info-project-list",
    "api-info-project-detail",
    "api-info-project-requests",
    # market: public board and public terms of orders, auctions and trades (tests/market), pages checked by role
    "market:board",
    "market:order",
    "market:auction",
    "market:trade",
    "market:new_listing",
    "market:new_buy_request",
    "market:new_auction",
    "market:new_deal",
    "market:close_auction",
    "market:admin",
    "api-market-book",
    "api-market-trades",
    "api-market-prices",
    "api-market-listings",
    "api-market-buy-requests",
    "api-market-take",
    "api-market-accept",
    "api-market-auctions",
    "api-market-auction",
    "api-market-bids",
    "api-market-deals",
    # dashboards: public aggregates; exports and reports are scoped per person (tests/dashboard/test_exports.py and
    # test_report.py check that another owner's rows never appear and that reports are for officials only)
    "dashboard:public",
    "dashboard:public_data",
    "dashboard:exports",
    "dashboard:export",
    "dashboard:reports",
    "dashboard:town_report",
}
# lists: another owner's objects must not appear
LISTS = {
    "pv:system_list": "/pv/",
    "metering:batch_list": "/metering/batches/",
    "pv:flag_queue": "/pv/flags/",
    "api-pv-system-list": "/api/v1/pv-systems/",
    "api-ingest-batch-list": "/api/v1/ingest-batches/",
    "api-quantifications": "/api/v1/quantifications/",
    "registry:account": "/registry/account/",
    "api-registry-account-me": "/api/v1/registry/accounts/me/",
    "registry:application_list": "/registry/applications/",
    "api-application-list": "/api/v1/applications/",
    "finance:project_list": "/finance/",
    "api-finance-project-list": "/api/v1/finance/projects/",
    "info:inbox": "/info/inbox/",
    "api-info-request-list": "/api/v1/info/requests/",
    "market:mine": "/market/mine/",
    "dashboard:my": "/my/",
}


def _names(resolver=None, prefix=""):  # type: ignore[no-untyped-def]
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin" or (p.app_name == "admin"):
                continue
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            yield from _names(p, ns)
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + p.name


@pytest.fixture
def world(media_root):
    alice = make_user("owner_household", username="alice")
    bob = make_user("owner_household", username="bob")
    system = make_system(alice, serial="ALICE-001")
    make_system(bob, serial="BOB-0001")
    data = (
        "meter_serial,timestamp,energy,unit\nALICE-001,2025-06-01T12:00:00+08:00,1.5,kWh\nALICE-001,x,1,kWh\n"
    )
    batch = do_ingest(iter_csv(io.BytesIO(data.encode())), source="upload", filename="a.csv", user=alice)
    flag = PlausibilityFlag.objects.create(
        system=system,
        month=date(2025, 6, 1),
        code="monthly_yield_reject",
        severity="reject",
        value=250,
        limit=200,
    )
    application = isolation_application(alice, system)
    alice_account = ledger.account_for_user(alice)
    issued = issue([(system, 5, alice_account)], applicant=alice).application
    retirement = ledger.do_retire(
        account=alice_account,
        quantity=2,
        beneficiary="Alice Ltd",
        purpose="voluntary",
        retired_on=date(2025, 6, 30),
        actor=alice,
    )
    return {
        "alice": alice,
        "bob": bob,
        "system": system,
        "batch": batch,
        "flag": flag,
        "application": application,
        "issued": issued,
        "retirement": retirement,
        "cooperation_request": isolation_request(alice),
        "financing_project": isolation_project(),
        **market_objects(alice, alice_account),
    }


def _object_urls(w):  # type: ignore[no-untyped-def]
    code, b, f = w["system"].code, w["batch"].pk, w["flag"].pk
    app = w["application"].code
    issued, rt = w["issued"].code, w["retirement"].number
    return {
        "pv:system_detail": ("get", f"/pv/systems/{code}/"),
        "pv:replace_meter": ("get", f"/pv/systems/{code}/replace-meter/"),
        "pv:add_evidence": ("post", f"/pv/systems/{code}/evidence/"),
        "pv:evidence_file": ("get", f"/pv/systems/{code}/evidence/1/"),
        "pv:add_claim": ("post", f"/pv/systems/{code}/claims/"),
        "pv:grant_consent": ("post", f"/pv/systems/{code}/consents/"),
        "pv:revoke_consent": ("post", f"/pv/systems/{code}/consents/1/revoke/"),
        "pv:clear_flag": ("post", f"/pv/flags/{f}/clear/"),
        "metering:batch_detail": ("get", f"/metering/batches/{b}/"),
        "metering:quarantine_csv": ("get", f"/metering/batches/{b}/quarantine.csv"),
        "api-pv-system-detail": ("get", f"/api/v1/pv-systems/{code}/"),
        "api-pv-system-monthly": ("get", f"/api/v1/pv-systems/{code}/monthly/"),
        "api-ingest-batch-detail": ("get", f"/api/v1/ingest-batches/{b}/"),
        "api-ingest-batch-quarantine": ("get", f"/api/v1/ingest-batches/{b}/quarantine/"),
        "registry:application_detail": ("get", f"/registry/applications/{app}/"),
        "registry:application_report": ("get", f"/registry/applications/{app}/report.pdf"),
        "registry:application_action": ("post", f"/registry/applications/{app}/action/"),
        "api-application-detail": ("get", f"/api/v1/applications/{app}/"),
        "api-application-actions": ("post", f"/api/v1/applications/{app}/actions/"),
        "api-application-report": ("get", f"/api/v1/applications/{app}/report/"),
        "api-application-checklist": ("get", f"/api/v1/applications/checklist/?system={code}"),
        "registry:retirement_certificate": ("get", f"/registry/certificates/retirement/{rt}.pdf"),
        "registry:issuance_certificate": ("get", f"/registry/certificates/issuance/{issued}.pdf"),
        "info:request_answer": ("post", f"/info/inbox/{w['cooperation_request'].pk}/answer/"),
        "api-info-request-answer": ("post", f"/api/v1/info/requests/{w['cooperation_request'].pk}/answer/"),
        "market:deal": ("get", f"/market/deals/{w['deal'].number}/"),
        "api-market-deal-confirm": ("post", f"/api/v1/market/deals/{w['deal'].number}/confirm/"),
        "api-market-deal-decline": ("post", f"/api/v1/market/deals/{w['deal'].number}/decline/"),
        "api-market-deal-cancel": ("post", f"/api/v1/market/deals/{w['deal'].number}/cancel/"),
        "market:cancel_order": ("post", f"/market/orders/{w['listing'].number}/cancel/"),
        "api-market-cancel": ("post", f"/api/v1/market/orders/{w['listing'].number}/cancel/"),
        "market:cancel_auction": ("post", f"/market/auctions/{w['auction'].number}/cancel/"),
        "finance:project_detail": ("get", f"/finance/projects/{w['financing_project'].code}/"),
        "finance:project_edit": ("get", f"/finance/projects/{w['financing_project'].code}/edit/"),
        "finance:project_action": ("post", f"/finance/projects/{w['financing_project'].code}/action/"),
        "finance:project_interest": ("post", f"/finance/projects/{w['financing_project'].code}/interest/"),
        "api-finance-project-detail": ("get", f"/api/v1/finance/projects/{w['financing_project'].code}/"),
        "api-finance-project-actions": (
            "post",
            f"/api/v1/finance/projects/{w['financing_project'].code}/actions/",
        ),
        "api-finance-project-calculation": (
            "get",
            f"/api/v1/finance/projects/{w['financing_project'].code}/calculation/",
        ),
        "api-finance-project-interests": (
            "get",
            f"/api/v1/finance/projects/{w['financing_project'].code}/interests/",
        ),
    }


def test_every_route_is_classified(world):
    known = PUBLIC_OR_GENERIC | set(LISTS) | set(_object_urls(world))
    missing = sorted(set(_names()) - known)
    assert not missing, f"classify these routes in tests/test_isolation.py: {missing}"


def test_other_owner_cannot_reach_objects(world):
    bob = Client()
    assert bob.login(username="bob", password=PASSWORD)
    token = Token.objects.create(user=world["bob"])
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for name, (method, url) in _object_urls(world).items():
        client = api if url.startswith("/api/") else bob
        resp = getattr(client, method)(url, {"note": "x", "programme": "ccer"} if method == "post" else None)
        assert resp.status_code in (403, 404), f"{name} {url} answered {resp.status_code}"
        assert world["system"].code.encode() not in resp.content, name
    world["flag"].refresh_from_db()
    assert world["flag"].cleared_at is None


def test_lists_do_not_show_other_owners_data(world):
    bob = Client()
    assert bob.login(username="bob", password=PASSWORD)
    for name, url in LISTS.items():
        resp = bob.get(url)
        assert resp.status_code in (200, 403), f"{name} answered {resp.status_code}"
        body = resp.content.decode()
        assert world["system"].code not in body and "ALICE-001" not in body, name
        assert f"/metering/batches/{world['batch'].pk}/" not in body, name
    # quantifications filtered by another owner's system
    assert bob.get(f"/api/v1/quantifications/?system={world['system'].code}").status_code in (403, 404)


def test_owner_reaches_own_objects(world):
    alice = Client()
    assert alice.login(username="alice", password=PASSWORD)
    for name in (
        "pv:system_detail",
        "metering:batch_detail",
        "metering:quarantine_csv",
        "api-pv-system-detail",
        "api-ingest-batch-detail",
        "registry:retirement_certificate",
        "registry:issuance_certificate",
        "registry:application_detail",
        "api-application-detail",
        "api-application-checklist",
    ):
        method, url = _object_urls(world)[name]
        assert alice.get(url).status_code == 200, name


def test_anonymous_is_sent_to_log_in(world):
    anon = Client()
    for name, (method, url) in _object_urls(world).items():
        resp = getattr(anon, method)(url)
        assert resp.status_code in (302, 401, 403), f"{name} answered {resp.status_code}"
    assert IngestBatch.objects.count() == 1 and Meter.objects.count() == 2
