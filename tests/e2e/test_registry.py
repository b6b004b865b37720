"""The registry journey in headless Chromium, as new users would try it: an aggregator bundles ten consenting
households and applies for their year (report drafted from the data, commitment signed); a city reviewer approves
and a registry administrator issues (three different people); the units appear in each household's account; a
household transfers part to a buyer, who retires them and downloads the certificate, whose verification address
(the QR code's target, printed under it) opens the public record. Screenshots under test-artifacts/."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _click(page, selector: str) -> None:
    page.click(selector)
    page.wait_for_load_state("networkidle")


def test_bundle_review_issue_transfer_retire_certificate(live_server, browser, settings, tmp_path):
    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import Application, Retirement
    from tests.factories import PASSWORD, make_user
    from tests.registry.app_helpers import bundle_world

    settings.MEDIA_ROOT = tmp_path / "media"
    w = bundle_world(10)
    buyer = make_user("buyer", username="buyer1")
    base = live_server.url

    def as_user(username):
        ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        login(page, base, username, PASSWORD)
        return ctx, page

    # the aggregator chooses the year and the ten households, creates the application
    agg_ctx, agg = as_user(w.aggregator.username)
    agg.goto(f"{base}/registry/applications/new/?kind=bundle&first=2025-01&last=2025-12")
    for s in w.systems:
        agg.check(f"#sys-{s.code}")
    _click(agg, "button[value=create]")
    app = Application.objects.get()
    assert app.kind == "bundle" and app.members.count() == 10 and app.units == 51  # the 2018 precedent: 51 t
    _click(agg, "#generate-report")
    agg.check("form:has(#sign-commitment) input[type=checkbox]")
    _click(agg, "#sign-commitment")
    _click(agg, "#action-submit")
    app.refresh_from_db()
    assert app.state == "submitted"
    shot(agg, "registry-bundle-submitted-zh")

    # a city reviewer takes it from the queue and approves
    rev_ctx, rev = as_user(w.reviewer.username)
    rev.goto(f"{base}/registry/review/")
    assert app.code in rev.content()
    rev.goto(f"{base}/registry/applications/{app.code}/")
    _click(rev, "#action-start_review")
    rev.fill("textarea[name=comment]", "数据核对无误")
    _click(rev, "#action-approve")
    app.refresh_from_db()
    assert app.state == "approved"

    # the registry administrator (a third person) issues
    adm_ctx, adm = as_user(w.admin.username)
    adm.goto(f"{base}/registry/issue/")
    _click(adm, f"#issue-{app.code}")
    app.refresh_from_db()
    assert app.state == "issued"
    shot(adm, "registry-bundle-issued-zh")

    # each household sees its share in its own account
    shares = {m.system.owner_user_id: m.units for m in app.members.select_related("system")}
    assert sum(shares.values()) == 51
    for h in w.households:
        assert ledger.balance(ledger.account_for_user(h)) == shares[h.pk]
    first = max(w.households, key=lambda h: shares[h.pk])
    hh_ctx, hh = as_user(first.username)
    hh.goto(f"{base}/registry/account/")
    assert str(shares[first.pk]) in hh.content()
    shot(hh, "registry-household-account-zh")

    # the household transfers two units to the buyer
    buyer_acct = ledger.account_for_user(buyer)
    hh.goto(f"{base}/registry/account/transfer/")
    hh.fill("#id_to_account", buyer_acct.number)
    hh.fill("#id_quantity", "2")
    _click(hh, "main form button[type=submit]")
    assert ledger.balance(buyer_acct) == 2
    assert ledger.balance(ledger.account_for_user(first)) == shares[first.pk] - 2

    # the buyer retires them and downloads the certificate
    b_ctx, bp = as_user(buyer.username)
    bp.goto(f"{base}/registry/account/retire/")
    bp.fill("#id_quantity", "2")
    bp.fill("#id_beneficiary", "小榄镇 2026 低碳运动会")
    bp.select_option("#id_purpose", "event_neutrality")
    _click(bp, "main form button[type=submit]")
    retirement = Retirement.objects.get()
    assert retirement.quantity == 2 and ledger.balance(buyer_acct) == 0
    bp.goto(f"{base}/registry/account/")
    href = bp.get_attribute(f"a[href$='{retirement.number}.pdf']", "href")  # the link on the account page
    resp = bp.request.get(base + href if href.startswith("/") else href)  # fetched with the buyer's session
    assert resp.ok and resp.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(resp.body())
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert retirement.number in text and "小榄镇 2026 低碳运动会" in text
    url = re.search(r"https?://\S+" + re.escape(retirement.number) + r"/?", text.replace("\n", ""))
    assert url, text
    public = browser.new_context(locale="zh-CN").new_page()  # anyone, without logging in
    public.goto(url.group(0))
    body = public.content()
    assert retirement.number in body and "小榄镇 2026 低碳运动会" in body
    assert (
        first.real_name not in body and buyer.real_name not in body
    )  # no personal data on the public record
    shot(public, "registry-public-retirement-zh")
    for ctx in (agg_ctx, rev_ctx, adm_ctx, hh_ctx, b_ctx):
        ctx.close()
