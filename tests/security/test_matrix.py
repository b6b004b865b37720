"""Authorisation matrix: every page and API endpoint × every role (each accounts Role, a member of the public, a
staff member without roles, a superuser) and Alice, the owner of the data. For each route the table says who may
read it (GET answers 200) and who may change through it (POST is not refused); everyone else is refused (log-in
redirect, 401, 403, 404 or 405) and a refused POST changes nothing in the database. Alice's name and the codes of
her PV system and meter appear only to those the table lets see them; her phone and ID-card numbers never appear
unmasked, to anyone. A route missing from the table fails the test until it is classified here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client

from lowcarbon.accounts.models import Role
from tests.security.helpers import (
    ACTORS,
    ALICE,
    ALICE_ID,
    ALICE_NAME,
    ALICE_PHONE,
    ALICE_SERIAL,
    ANON,
    STAFF,
    SUPER,
    body_text,
    build_world,
)
from tests.security.routes import route_names, route_urls

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

# --- who is who ----------------------------------------------------------------------------------------------------
HH, ENT, INST = Role.OWNER_HOUSEHOLD.value, Role.OWNER_ENTERPRISE.value, Role.OWNER_INSTITUTION.value
AGG, RCITY, RTOWN = Role.AGGREGATOR.value, Role.REVIEWER_CITY.value, Role.REVIEWER_TOWN.value
VERIF, ADMIN, BUYER = Role.VERIFIER.value, Role.REGISTRY_ADMIN.value, Role.BUYER.value
FIN, EDITOR = Role.FINANCIER.value, Role.CONTENT_EDITOR.value

NOBODY: frozenset[str] = frozenset()
ALL = frozenset([*ACTORS, ALICE])
USERS = ALL - {ANON}
ADM = frozenset({ADMIN, SUPER})  # registry administrators (a superuser counts as one)
OWNERS = frozenset({HH, ENT, INST})
REV = frozenset({RCITY, RTOWN})
SYS_OFF = REV | ADM  # officials who see every PV system
APP_OFF = SYS_OFF | {VERIF}  # officials who see every application
EDIT = ADM | {EDITOR}  # who manages notices, projects and cooperation requests
REGISTERS = OWNERS | {AGG} | ADM  # who registers systems and uploads readings
A = frozenset({ALICE})


@dataclass(frozen=True)
class Rule:
    read: frozenset[str]
    change: frozenset[str] = NOBODY
    sees_name: frozenset[str] = A  # who may find Alice's real name in the answer
    sees_code: frozenset[str] = A  # who may find the code of her system or meter in the answer
    inert_post: bool = False  # a page that ignores POST: it may answer 200, and must change nothing


PUBLIC = Rule(ALL, sees_code=ALL)

# --- the table -----------------------------------------------------------------------------------------------------
MATRIX: dict[str, Rule] = {
    # site, accounts
    "home": Rule(ALL, inert_post=True),
    "login": Rule(ALL, ALL),
    "logout": Rule(NOBODY, ALL),
    "account": Rule(USERS, inert_post=True),
    "account_token": Rule(NOBODY, USERS),
    "account_password": Rule(USERS, USERS),
    "audit_log": Rule(ADM),
    "set_language": Rule(NOBODY, ALL),
    "javascript-catalog": Rule(ALL),
    "api-schema": Rule(ALL),
    "api-docs": Rule(ALL),
    "api-redoc": Rule(ALL),
    "api-me": Rule(USERS),
    "api-token": Rule(NOBODY, ALL),
    # metering
    "metering:upload": Rule(REGISTERS | A, REGISTERS | A),
    "metering:sample_csv": Rule(ALL),
    "metering:batch_list": Rule(USERS, sees_name=ADM | A),
    "metering:batch_detail": Rule(ADM | A, sees_name=ADM | A, sees_code=ADM | A),
    "metering:quarantine_csv": Rule(ADM | A, sees_code=ADM | A),
    "api-readings-batch": Rule(NOBODY, REGISTERS | A),
    "api-ingest-batch-list": Rule(USERS),
    "api-ingest-batch-detail": Rule(ADM | A),
    "api-ingest-batch-quarantine": Rule(ADM | A, sees_code=ADM | A),
    # PV systems
    "pv:system_list": Rule(USERS, sees_code=SYS_OFF | A),
    "pv:register": Rule(REGISTERS | A, REGISTERS | A),
    "pv:bulk_register": Rule(ADM | {AGG}, ADM | {AGG}),
    "pv:bulk_template": Rule(ADM | {AGG}),
    "pv:flag_queue": Rule(SYS_OFF, sees_code=SYS_OFF),
    "pv:clear_flag": Rule(NOBODY, SYS_OFF),
    "pv:system_detail": Rule(SYS_OFF | A, sees_code=SYS_OFF | A),
    "pv:replace_meter": Rule(ADM | A, ADM | A, sees_code=ADM | A),
    "pv:add_evidence": Rule(NOBODY, ADM | A),
    "pv:evidence_file": Rule(SYS_OFF | A),
    "pv:add_claim": Rule(NOBODY, ADM | A),
    "pv:grant_consent": Rule(NOBODY, ADM | A),
    "pv:revoke_consent": Rule(NOBODY, ADM | A),
    "api-pv-system-list": Rule(USERS, REGISTERS | A, sees_code=SYS_OFF | A),
    "api-pv-system-bulk": Rule(NOBODY, ADM | {AGG}),
    "api-pv-system-detail": Rule(SYS_OFF | A, sees_code=SYS_OFF | A),
    "api-pv-system-monthly": Rule(SYS_OFF | A, sees_code=SYS_OFF | A),
    "api-community-list": Rule(ALL),
    "api-community-detail": Rule(ALL),
    # methodology
    "methodology:factors": Rule(ALL, inert_post=True),
    "api-methodologies": Rule(ALL),
    "api-grid-factors": Rule(ALL),
    "api-quantifications": Rule(SYS_OFF | A, sees_code=SYS_OFF | A),
    "api-quantify": Rule(NOBODY, SYS_OFF | A),
    # registry: applications
    "registry:guidance": Rule(ALL),
    "registry:guidance_pdf": Rule(ALL),
    "registry:application_list": Rule(USERS, sees_name=APP_OFF | A),
    "registry:application_new": Rule(OWNERS | {AGG} | A, OWNERS | {AGG} | A),
    "registry:application_detail": Rule(APP_OFF | A, sees_name=APP_OFF | A, sees_code=APP_OFF | A),
    "registry:application_report": Rule(NOBODY, A),  # no report attached yet: 404 for everyone
    "registry:application_action": Rule(NOBODY, APP_OFF | A),
    "registry:review_queue": Rule(REV | {VERIF}),
    "registry:issue_queue": Rule(ADM, ADM),
    "registry:notifications": Rule(USERS, USERS),
    "api-application-list": Rule(USERS, USERS, sees_name=APP_OFF | A),
    "api-application-checklist": Rule(SYS_OFF | A, sees_code=SYS_OFF | A),
    "api-application-queue": Rule(USERS),
    "api-application-detail": Rule(APP_OFF | A, sees_name=APP_OFF | A, sees_code=APP_OFF | A),
    "api-application-actions": Rule(NOBODY, APP_OFF | A),
    "api-application-report": Rule(NOBODY, APP_OFF | A),
    # registry: accounts, certificates, public registry
    "registry:account": Rule(USERS),
    "registry:transfer": Rule(USERS, USERS),
    "registry:retire": Rule(USERS, USERS),
    "registry:retirement_certificate": Rule(A),
    "registry:issuance_certificate": Rule(ADM | A),
    "registry:public_search": PUBLIC,
    "registry:public_block": PUBLIC,
    "registry:public_retirement": PUBLIC,
    "registry:admin_cancel": Rule(ADM, ADM),
    "api-registry-account-me": Rule(USERS),
    "api-registry-transfers": Rule(NOBODY, USERS),
    "api-registry-retirements": Rule(NOBODY, USERS),
    "api-registry-retirement-detail": PUBLIC,
    "api-registry-blocks": PUBLIC,
    # market (anyone with a registry account may trade; administrators supervise and may withdraw orders)
    "market:board": Rule(ALL, inert_post=True),
    "market:new_listing": Rule(USERS, USERS),
    "market:new_buy_request": Rule(USERS, USERS),
    "market:order": Rule(ALL, USERS - A),  # anyone but its owner may take a listing
    "market:cancel_order": Rule(NOBODY, ADM | A),
    "market:new_auction": Rule(USERS, USERS),
    "market:auction": Rule(ALL, USERS - A),
    "market:cancel_auction": Rule(NOBODY, ADM | A),
    "market:close_auction": Rule(NOBODY, ADM),
    "market:new_deal": Rule(USERS, USERS),
    "market:deal": Rule(ADM | A, ADM | A),
    "market:trade": Rule(ALL, ADM | A, sees_code=ALL),
    "market:mine": Rule(USERS, inert_post=True),
    "market:admin": Rule(ADM, ADM),
    "api-market-book": Rule(ALL),
    "api-market-trades": Rule(ALL),
    "api-market-prices": Rule(ALL),
    "api-market-listings": Rule(NOBODY, USERS),
    "api-market-buy-requests": Rule(NOBODY, USERS),
    "api-market-take": Rule(NOBODY, USERS),
    "api-market-accept": Rule(NOBODY),  # Alice's order is a listing, not a buy request
    "api-market-cancel": Rule(NOBODY, ADM | A),
    "api-market-auctions": Rule(NOBODY, USERS),
    "api-market-auction": Rule(ALL),
    "api-market-bids": Rule(NOBODY, USERS),
    "api-market-deals": Rule(NOBODY, USERS),
    "api-market-deal-confirm": Rule(NOBODY),  # only the buyer named in the deal (Carol)
    "api-market-deal-decline": Rule(NOBODY),
    "api-market-deal-cancel": Rule(NOBODY, A),
    # finance (the project belongs to an enterprise owner outside the actors)
    "finance:project_list": Rule(ADM | {ENT, INST, AGG, FIN}, inert_post=True),
    "finance:project_new": Rule(frozenset({ENT, INST, AGG}), frozenset({ENT, INST, AGG})),
    "finance:project_detail": Rule(ADM),
    "finance:project_edit": Rule(NOBODY),
    "finance:project_action": Rule(NOBODY, ADM),
    "finance:project_interest": Rule(NOBODY),  # a draft: financiers cannot see it yet
    "finance:pipeline": Rule(ADM, ADM),
    "finance:financier_signup": Rule(ALL, ALL),
    "finance:estimator": Rule(ALL, ALL),
    "api-finance-pipeline": Rule(ADM),
    "api-finance-estimate": Rule(NOBODY, ALL),
    "api-finance-project-list": Rule(USERS, USERS),
    "api-finance-project-detail": Rule(ADM),
    "api-finance-project-actions": Rule(NOBODY, ADM),
    "api-finance-project-calculation": Rule(ADM),
    "api-finance-project-interests": Rule(ADM, ADM),
    # information service
    "info:article_list": Rule(ALL),
    "info:article_detail": Rule(ALL),
    "info:attachment_file": Rule(ALL),
    "info:project_list": Rule(ALL),
    "info:project_detail": Rule(ALL, ALL, sees_code=ALL),  # linked systems by code, as in the API
    "info:photo_file": Rule(ALL),
    "info:photo_thumb": Rule(ALL),
    "info:inbox": Rule(EDIT | A),
    "info:request_answer": Rule(NOBODY, EDIT | A),
    "info:manage": Rule(EDIT),
    "info:article_new": Rule(EDIT, EDIT),
    "info:article_edit": Rule(EDIT, EDIT),
    "info:article_publish": Rule(NOBODY, EDIT),
    "info:article_unpublish": Rule(NOBODY, EDIT),
    "info:attachment_add": Rule(NOBODY, EDIT),
    "info:attachment_delete": Rule(NOBODY, EDIT),
    "info:project_new": Rule(EDIT, EDIT),
    "info:project_edit": Rule(EDIT, EDIT, sees_code=EDIT),
    "info:project_publish": Rule(NOBODY, EDIT),
    "info:outcome_add": Rule(NOBODY, EDIT),
    "info:outcome_delete": Rule(NOBODY, EDIT),
    "info:photo_add": Rule(NOBODY, EDIT),
    "info:photo_delete": Rule(NOBODY, EDIT),
    "api-info-article-list": Rule(ALL, EDIT),
    "api-info-article-detail": Rule(EDIT),  # a draft
    "api-info-article-attachments": Rule(NOBODY, EDIT),
    "api-info-article-publish": Rule(NOBODY, EDIT),
    "api-info-article-unpublish": Rule(NOBODY, EDIT),
    "api-info-project-list": Rule(ALL),
    "api-info-project-detail": PUBLIC,
    "api-info-project-requests": Rule(NOBODY, ALL),
    "api-info-request-list": Rule(USERS),
    "api-info-request-answer": Rule(NOBODY, EDIT | A),
    # dashboards, exports, reports
    "dashboard:public": Rule(ALL),
    "dashboard:public_data": Rule(ALL),
    "dashboard:my": Rule(USERS, sees_code=ADM | A),
    "dashboard:exports": Rule(USERS),
    "dashboard:export": Rule(OWNERS | {AGG} | SYS_OFF | A),
    "dashboard:reports": Rule(SYS_OFF),
    "dashboard:town_report": Rule(SYS_OFF),
}

#: routes whose POST logs out, replaces the API token or changes the language: each actor gets a fresh client
FRESH = {"login", "logout", "account_token", "account_password", "set_language", "api-token"}
#: GET answers that may be a redirect for those allowed (set_language sends back where one came from)
REFUSED = {401, 403, 404, 405}
NOT_REFUSED = {200, 201, 202, 204, 302, 303, 400, 409, 415, 422}
SKIP_FINGERPRINT = {
    "sessions.session",
    "authtoken.token",
    "admin.logentry",
    "contenttypes.contenttype",
    "auth.permission",
    "accounts.auditevent",
}


def fingerprint() -> dict[str, str]:
    """A digest of every table (except sessions, tokens and logs): a refused request must leave all unchanged."""
    out = {}
    for m in apps.get_models():
        label = m._meta.label_lower
        if label in SKIP_FINGERPRINT or m._meta.proxy:
            continue
        rows = list(m.objects.order_by("pk").values_list())
        out[label] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def _login_redirect(resp) -> bool:  # type: ignore[no-untyped-def]
    return resp.status_code in (301, 302) and "/login/" in resp.get("Location", "")


def _refused(resp) -> bool:  # type: ignore[no-untyped-def]
    return resp.status_code in REFUSED or _login_redirect(resp)


def _fresh_client(w, actor: str, api: bool) -> Client:  # type: ignore[no-untyped-def]
    """A client of its own (not the world's shared one), for requests that log out or replace the token."""
    saved = w._clients.pop((actor, api), None)
    try:
        return w.client(actor, api)
    finally:
        w._clients.pop((actor, api), None)
        if saved is not None:
            w._clients[(actor, api)] = saved


def _no_pdf_rendering(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Who may fetch a PDF is what is tested here, not the PDF: WeasyPrint's (slow) rendering is left out."""
    import weasyprint

    def write_pdf(self, target=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        data = b"%PDF-1.4\n%%EOF\n"
        if target is None:
            return data
        target.write(data)
        return None

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", write_pdf)


@pytest.fixture
def world(media_root, monkeypatch):  # type: ignore[no-untyped-def]
    _no_pdf_rendering(monkeypatch)
    w = build_world()
    for actor in [*ACTORS, ALICE]:
        w.client(actor, False)
        w.client(actor, True)
    return w


def test_every_route_is_in_the_matrix():
    names = set(route_names())
    assert not sorted(names - set(MATRIX)), f"add these routes to MATRIX: {sorted(names - set(MATRIX))}"
    assert not sorted(set(MATRIX) - names), f"stale routes in MATRIX: {sorted(set(MATRIX) - names)}"


def test_reads(world):
    """GET by every actor: allowed ones get 200, the others are refused; Alice's data shows only where allowed."""
    urls = route_urls(world)
    assert not sorted(set(MATRIX) - set(urls)), (
        f"give these routes an address: {sorted(set(MATRIX) - set(urls))}"
    )
    code = world["system"].code
    problems = []
    for name, rule in MATRIX.items():
        url = urls[name]
        api = url.startswith("/api/")
        for actor in [*ACTORS, ALICE]:
            client = _fresh_client(world, actor, api) if name in FRESH else world.client(actor, api)
            resp = client.get(url)
            if resp.status_code >= 500:
                problems.append(f"{name} GET by {actor}: {resp.status_code}")
                continue
            if actor in rule.read and resp.status_code != 200:
                problems.append(f"{name} GET by {actor}: {resp.status_code}, expected 200")
            if actor not in rule.read and not (
                _refused(resp) or (name == "set_language" and resp.status_code == 302)
            ):
                problems.append(f"{name} GET by {actor}: {resp.status_code}, expected a refusal")
            text = body_text(resp)
            if ALICE_PHONE in text or ALICE_ID in text:
                problems.append(f"{name} GET by {actor}: Alice's phone or ID-card number unmasked")
            if actor not in rule.sees_name and ALICE_NAME in text:
                problems.append(f"{name} GET by {actor}: shows Alice's name")
            if actor not in rule.sees_code and code not in url and (code in text or ALICE_SERIAL in text):
                problems.append(f"{name} GET by {actor}: shows Alice's system or meter")
    assert not problems, "\n".join(problems)
    check_admin_site_is_for_staff_only(world)


def test_changes(world):
    """POST by every actor, each inside a savepoint rolled back afterwards: those not allowed are refused and
    change nothing; those allowed are let through to the validation of what they sent."""
    urls = route_urls(world)
    before = fingerprint()
    problems = []
    for name, rule in MATRIX.items():
        url = urls[name]
        api = url.startswith("/api/")
        data = {"note": "x", "reason": "x", "code": world["application"].code}
        outsiders = [a for a in [*ACTORS, ALICE] if a not in rule.change]
        with transaction.atomic():
            for actor in outsiders:
                client = _fresh_client(world, actor, api) if name in FRESH else world.client(actor, api)
                resp = client.post(url, data)
                ok = (
                    _refused(resp)
                    or resp.status_code in (302, 303)
                    or (rule.inert_post and resp.status_code == 200)
                )
                if not ok:
                    problems.append(f"{name} POST by {actor}: {resp.status_code}, expected a refusal")
            after = fingerprint()
            changed = sorted(k for k in after if after[k] != before[k])
            if changed:
                problems.append(f"{name} POST by one of {outsiders} changed {changed}")
            transaction.set_rollback(True)
        for actor in sorted(rule.change):
            with transaction.atomic():
                client = _fresh_client(world, actor, api) if name in FRESH else world.client(actor, api)
                resp = client.post(url, data)
                if resp.status_code not in NOT_REFUSED or _login_redirect(resp):
                    problems.append(f"{name} POST by {actor}: {resp.status_code}, expected to be let through")
                transaction.set_rollback(True)
    assert not problems, "\n".join(problems)


def check_admin_site_is_for_staff_only(world):  # type: ignore[no-untyped-def]
    """The back office: the public and people without staff status are sent to its log-in; a staff member without
    permissions sees no model; personal data in the people list is masked."""
    for actor in [ANON, *[r.value for r in Role], ALICE]:
        resp = world.client(actor).get("/admin/accounts/user/")
        assert resp.status_code == 302 and "/admin/login/" in resp["Location"], actor
    assert world.client(STAFF).get("/admin/accounts/user/").status_code == 403
    assert world.client(STAFF).get("/admin/accounts/auditevent/").status_code == 403
    resp = world.client(SUPER).get("/admin/accounts/user/?q=alice")
    text = resp.content.decode()
    assert resp.status_code == 200 and ALICE_NAME in text
    assert ALICE_PHONE not in text and ALICE_ID not in text
    assert "139****1234" in text
