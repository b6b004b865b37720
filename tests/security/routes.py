"""Every route of the project with a concrete address in the security world (tests/security/helpers.py), and a
walk of the URL resolver, so that a new route is noticed."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver


def route_names(resolver: Any = None, prefix: str = "") -> list[str]:
    """Names of all routes except Django's admin site (checked separately)."""
    resolver = resolver or get_resolver()
    out: list[str] = []
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if p.app_name == "admin":
                continue
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            out += route_names(p, ns)
        elif isinstance(p, URLPattern) and p.name:
            out.append(prefix + p.name)
    return out


def route_urls(w: Any) -> dict[str, str]:
    """name → address, with Alice's objects (or the world's public ones) in the path."""
    system, batch, flag = w["system"].code, w["batch"].pk, w["flag"].pk
    app, issued, rt = w["application"].code, w["issued"].code, w["retirement"].number
    listing, auction, deal, trade = (
        w["listing"].number,
        w["auction"].number,
        w["deal"].number,
        w["trade"].number,
    )
    fp = w["financing_project"].code
    article, draft, att = w["article"].pk, w["draft_article"].pk, w["attachment"].pk
    project, photo, outcome, req = (
        w["demo_project"].pk,
        w["photo"].pk,
        w["outcome"].pk,
        w["cooperation_request"].pk,
    )
    block = w["issued_block"].pk
    return {
        # accounts and site
        "home": "/",
        "login": "/login/",
        "logout": "/logout/",
        "account": "/account/",
        "account_token": "/account/token/",
        "account_password": "/account/password/",
        "audit_log": "/account/audit/",
        "set_language": "/i18n/setlang/",
        "javascript-catalog": "/jsi18n/",
        "api-schema": "/api/v1/schema/",
        "api-docs": "/api/v1/docs/",
        "api-redoc": "/api/v1/redoc/",
        "api-me": "/api/v1/me/",
        "api-token": "/api/v1/auth/token/",
        # metering
        "metering:upload": "/metering/upload/",
        "metering:sample_csv": "/metering/upload/sample.csv",
        "metering:batch_list": "/metering/batches/",
        "metering:batch_detail": f"/metering/batches/{batch}/",
        "metering:quarantine_csv": f"/metering/batches/{batch}/quarantine.csv",
        "api-readings-batch": "/api/v1/readings/batch/",
        "api-ingest-batch-list": "/api/v1/ingest-batches/",
        "api-ingest-batch-detail": f"/api/v1/ingest-batches/{batch}/",
        "api-ingest-batch-quarantine": f"/api/v1/ingest-batches/{batch}/quarantine/",
        # pv
        "pv:system_list": "/pv/",
        "pv:register": "/pv/register/",
        "pv:bulk_register": "/pv/bulk/",
        "pv:bulk_template": "/pv/bulk/template/",
        "pv:flag_queue": "/pv/flags/",
        "pv:clear_flag": f"/pv/flags/{flag}/clear/",
        "pv:system_detail": f"/pv/systems/{system}/",
        "pv:replace_meter": f"/pv/systems/{system}/replace-meter/",
        "pv:add_evidence": f"/pv/systems/{system}/evidence/",
        "pv:evidence_file": f"/pv/systems/{system}/evidence/{w['evidence'].pk}/",
        "pv:add_claim": f"/pv/systems/{system}/claims/",
        "pv:grant_consent": f"/pv/systems/{system}/consents/",
        "pv:revoke_consent": f"/pv/systems/{system}/consents/{w['consent'].pk}/revoke/",
        "api-pv-system-list": "/api/v1/pv-systems/",
        "api-pv-system-bulk": "/api/v1/pv-systems/bulk/",
        "api-pv-system-detail": f"/api/v1/pv-systems/{system}/",
        "api-pv-system-monthly": f"/api/v1/pv-systems/{system}/monthly/",
        "api-community-list": "/api/v1/communities/",
        "api-community-detail": "/api/v1/communities/dongqu/",
        # methodology
        "methodology:factors": "/methodology/",
        "api-methodologies": "/api/v1/methodologies/",
        "api-grid-factors": "/api/v1/grid-factors/",
        "api-quantifications": f"/api/v1/quantifications/?system={system}",
        "api-quantify": "/api/v1/quantify/",
        # registry: applications
        "registry:guidance": "/registry/guidance/",
        "registry:guidance_pdf": "/registry/guidance.pdf",
        "registry:application_list": "/registry/applications/",
        "registry:application_new": "/registry/applications/new/",
        "registry:application_detail": f"/registry/applications/{app}/",
        "registry:application_report": f"/registry/applications/{app}/report.pdf",
        "registry:application_action": f"/registry/applications/{app}/action/",
        "registry:review_queue": "/registry/review/",
        "registry:issue_queue": "/registry/issue/",
        "registry:notifications": "/registry/notifications/",
        "api-application-list": "/api/v1/applications/",
        "api-application-checklist": f"/api/v1/applications/checklist/?system={system}",
        "api-application-queue": "/api/v1/applications/queue/",
        "api-application-detail": f"/api/v1/applications/{app}/",
        "api-application-actions": f"/api/v1/applications/{app}/actions/",
        "api-application-report": f"/api/v1/applications/{app}/report/",
        # registry: ledger
        "registry:account": "/registry/account/",
        "registry:transfer": "/registry/account/transfer/",
        "registry:retire": "/registry/account/retire/",
        "registry:retirement_certificate": f"/registry/certificates/retirement/{rt}.pdf",
        "registry:issuance_certificate": f"/registry/certificates/issuance/{issued}.pdf",
        "registry:public_search": "/registry/public/",
        "registry:public_block": f"/registry/public/blocks/{block}/",
        "registry:public_retirement": f"/registry/public/retirements/{rt}/",
        "registry:admin_cancel": "/registry/cancel/",
        "api-registry-account-me": "/api/v1/registry/accounts/me/",
        "api-registry-transfers": "/api/v1/registry/transfers/",
        "api-registry-retirements": "/api/v1/registry/retirements/",
        "api-registry-retirement-detail": f"/api/v1/registry/retirements/{rt}/",
        "api-registry-blocks": "/api/v1/registry/blocks/",
        # market
        "market:board": "/market/",
        "market:new_listing": "/market/listings/new/",
        "market:new_buy_request": "/market/requests/new/",
        "market:order": f"/market/orders/{listing}/",
        "market:cancel_order": f"/market/orders/{listing}/cancel/",
        "market:new_auction": "/market/auctions/new/",
        "market:auction": f"/market/auctions/{auction}/",
        "market:cancel_auction": f"/market/auctions/{auction}/cancel/",
        "market:close_auction": f"/market/auctions/{auction}/close/",
        "market:new_deal": "/market/deals/new/",
        "market:deal": f"/market/deals/{deal}/",
        "market:trade": f"/market/trades/{trade}/",
        "market:mine": "/market/mine/",
        "market:admin": "/market/admin/",
        "api-market-book": "/api/v1/market/book/",
        "api-market-trades": "/api/v1/market/trades/",
        "api-market-prices": "/api/v1/market/prices/",
        "api-market-listings": "/api/v1/market/listings/",
        "api-market-buy-requests": "/api/v1/market/buy-requests/",
        "api-market-take": f"/api/v1/market/orders/{listing}/take/",
        "api-market-accept": f"/api/v1/market/orders/{listing}/accept/",
        "api-market-cancel": f"/api/v1/market/orders/{listing}/cancel/",
        "api-market-auctions": "/api/v1/market/auctions/",
        "api-market-auction": f"/api/v1/market/auctions/{auction}/",
        "api-market-bids": f"/api/v1/market/auctions/{auction}/bids/",
        "api-market-deals": "/api/v1/market/deals/",
        "api-market-deal-confirm": f"/api/v1/market/deals/{deal}/confirm/",
        "api-market-deal-decline": f"/api/v1/market/deals/{deal}/decline/",
        "api-market-deal-cancel": f"/api/v1/market/deals/{deal}/cancel/",
        # finance
        "finance:project_list": "/finance/",
        "finance:project_new": "/finance/projects/new/",
        "finance:project_detail": f"/finance/projects/{fp}/",
        "finance:project_edit": f"/finance/projects/{fp}/edit/",
        "finance:project_action": f"/finance/projects/{fp}/action/",
        "finance:project_interest": f"/finance/projects/{fp}/interest/",
        "finance:pipeline": "/finance/pipeline/",
        "finance:financier_signup": "/finance/financiers/signup/",
        "finance:estimator": "/finance/estimator/",
        "api-finance-pipeline": "/api/v1/finance/pipeline/",
        "api-finance-estimate": "/api/v1/finance/estimate/",
        "api-finance-project-list": "/api/v1/finance/projects/",
        "api-finance-project-detail": f"/api/v1/finance/projects/{fp}/",
        "api-finance-project-actions": f"/api/v1/finance/projects/{fp}/actions/",
        "api-finance-project-calculation": f"/api/v1/finance/projects/{fp}/calculation/",
        "api-finance-project-interests": f"/api/v1/finance/projects/{fp}/interests/",
        # information service
        "info:article_list": "/info/",
        "info:article_detail": f"/info/{article}/",
        "info:attachment_file": f"/info/attachments/{att}/",
        "info:project_list": "/info/projects/",
        "info:project_detail": f"/info/projects/{project}/",
        "info:photo_file": f"/info/photos/{photo}/",
        "info:photo_thumb": f"/info/photos/{photo}/thumb/",
        "info:inbox": "/info/inbox/",
        "info:request_answer": f"/info/inbox/{req}/answer/",
        "info:manage": "/info/manage/",
        "info:article_new": "/info/manage/articles/new/",
        "info:article_edit": f"/info/manage/articles/{draft}/",
        "info:article_publish": f"/info/manage/articles/{draft}/publish/",
        "info:article_unpublish": f"/info/manage/articles/{article}/unpublish/",
        "info:attachment_add": f"/info/manage/articles/{article}/attachments/",
        "info:attachment_delete": f"/info/manage/attachments/{att}/delete/",
        "info:project_new": "/info/manage/projects/new/",
        "info:project_edit": f"/info/manage/projects/{project}/",
        "info:project_publish": f"/info/manage/projects/{project}/publish/",
        "info:outcome_add": f"/info/manage/projects/{project}/outcomes/",
        "info:outcome_delete": f"/info/manage/outcomes/{outcome}/delete/",
        "info:photo_add": f"/info/manage/projects/{project}/photos/",
        "info:photo_delete": f"/info/manage/photos/{photo}/delete/",
        "api-info-article-list": "/api/v1/info/articles/",
        "api-info-article-detail": f"/api/v1/info/articles/{draft}/",
        "api-info-article-attachments": f"/api/v1/info/articles/{article}/attachments/",
        "api-info-article-publish": f"/api/v1/info/articles/{draft}/publish/",
        "api-info-article-unpublish": f"/api/v1/info/articles/{article}/unpublish/",
        "api-info-project-list": "/api/v1/info/projects/",
        "api-info-project-detail": f"/api/v1/info/projects/{project}/",
        "api-info-project-requests": f"/api/v1/info/projects/{project}/requests/",
        "api-info-request-list": "/api/v1/info/requests/",
        "api-info-request-answer": f"/api/v1/info/requests/{req}/answer/",
        # dashboards
        "dashboard:public": "/dashboard/",
        "dashboard:public_data": "/dashboard/data.json",
        "dashboard:my": "/my/",
        "dashboard:exports": "/my/exports/",
        "dashboard:export": "/my/exports/systems.xlsx",
        "dashboard:reports": "/my/reports/",
        "dashboard:town_report": "/my/reports/town-2025-6.pdf",
    }
