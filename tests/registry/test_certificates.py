"""Certificates of issuance and retirement: real PDFs with the CJK font embedded, the QR code pointing at the public
verification page, the facts a reader needs, and no household's personal data on a bundle's certificate."""

from __future__ import annotations

import re
import zlib
from datetime import date

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from lowcarbon.accounts.models import Role
from lowcarbon.registry import certificates, ledger
from tests.factories import make_org, make_system, make_user
from tests.registry.cert_helpers import household_with_units, issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def pdf_fonts(data: bytes) -> tuple[list[str], bool]:
    """Names of the fonts in a PDF and whether font programs are embedded (object streams are inflated)."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            continue
    blob = b"".join(chunks)
    names = sorted({n.decode() for n in re.findall(rb"/BaseFont\s*/([A-Za-z0-9+\-_]+)", blob)})
    return names, bool(re.search(rb"/FontFile[23]?\b", blob))


@pytest.fixture
def retired():
    owner, account, issued = household_with_units(37)
    buyer_org = make_org("enterprise", name="中山市小榄镇绿能五金有限公司")
    buyer = make_user(Role.BUYER, org=buyer_org)
    buyer_org.memberships.filter(user=buyer).update(level="admin")
    buyer_account = ledger.account_for_org(buyer_org)
    ledger.do_transfer(from_account=account, to_account=buyer_account, quantity=12, actor=owner)
    retirement = ledger.do_retire(
        account=buyer_account,
        quantity=5,
        beneficiary="中山市小榄镇绿能五金有限公司",
        purpose="event_neutrality",
        retired_on=date(2025, 6, 30),
        actor=buyer,
        note="2025 年春季展会碳中和",
    )
    return {"owner": owner, "issued": issued, "retirement": retirement, "buyer": buyer}


def test_retirement_certificate_is_a_pdf_with_the_cjk_font_embedded(retired, settings):
    settings.LOWCARBON_PUBLIC_BASE_URL = "https://lowcarbon.example.cn"
    data = certificates.retirement_pdf(retired["retirement"])
    assert data.startswith(b"%PDF")
    names, embedded = pdf_fonts(data)
    assert any("CJK" in n or "Noto" in n for n in names), names
    assert embedded


def test_qr_code_and_printed_address_point_at_the_public_record(retired, settings):
    settings.ALLOWED_HOSTS = ["lowcarbon.example.cn"]
    r = retired["retirement"]
    request = RequestFactory().get("/registry/account/", HTTP_HOST="lowcarbon.example.cn")
    url = certificates.retirement_verification_url(r, request)
    assert url == f"http://lowcarbon.example.cn/registry/public/retirements/{r.number}/"
    html = certificates.retirement_html(r, verify_url=url)
    assert url in html
    assert certificates.qr_data_uri(url) in html  # the QR image encodes exactly this address
    assert html.count('src="data:image/svg+xml;base64,') == 1


def test_retirement_certificate_states_the_facts(retired):
    r = retired["retirement"]
    html = certificates.retirement_html(r, verify_url="https://x.example/v/")
    series = retired["issued"].blocks[0].series
    assert r.number in html
    assert "中山市小榄镇绿能五金有限公司" in html  # beneficiary (and the retiring organisation)
    assert f"{series}-00000001-00000005" in html  # serial range
    assert "2025-06-30" in html
    assert retired["issued"].blocks[0].project_code in html
    assert "2025" in html and "GD-PV-2022" in html
    assert "2025 年春季展会碳中和" in html
    # the household that first held the units is not named
    assert "麦润标" not in html and "13800138000" not in html


def test_without_a_request_the_public_base_url_setting_is_needed(retired, settings, monkeypatch):
    monkeypatch.delenv("LOWCARBON_PUBLIC_BASE_URL", raising=False)
    settings.LOWCARBON_PUBLIC_BASE_URL = ""
    with pytest.raises(ImproperlyConfigured):
        certificates.retirement_verification_url(retired["retirement"])
    settings.LOWCARBON_PUBLIC_BASE_URL = "https://lowcarbon.example.cn/"
    number = retired["retirement"].number
    assert (
        certificates.retirement_verification_url(retired["retirement"])
        == f"https://lowcarbon.example.cn/registry/public/retirements/{number}/"
    )


def test_issuance_certificate_of_a_bundle_names_accounts_not_households(settings):
    settings.LOWCARBON_PUBLIC_BASE_URL = "https://lowcarbon.example.cn"
    agg_org = make_org("aggregator", name="中山市小榄低碳发展促进中心")
    agg = make_user(Role.AGGREGATOR, org=agg_org)
    h1 = make_user(Role.OWNER_HOUSEHOLD, real_name="黄美玲", phone="13900001111")
    h2 = make_user(Role.OWNER_HOUSEHOLD, real_name="梁志强", phone="13900002222")
    a1, a2 = ledger.account_for_user(h1), ledger.account_for_user(h2)
    done = issue(
        [(make_system(h1), 3, a1), (make_system(h2), 4, a2)],
        applicant=agg,
        applicant_org=agg_org,
        vintage=2024,
    )
    url = certificates.issuance_verification_url(done.application)
    assert url == f"https://lowcarbon.example.cn/registry/public/?application={done.application.code}"
    html = certificates.issuance_html(done.application, verify_url=url)
    assert url.replace("&", "&amp;") in html or url in html
    for block in done.blocks:
        assert block.serial in html
    assert a1.number in html and a2.number in html
    assert "中山市小榄低碳发展促进中心" in html
    assert "MEE2019-SOUTH-CM" in html and "GD-PV-2022" in html and "2024" in html
    for private in ("黄美玲", "梁志强", "13900001111", "13900002222"):
        assert private not in html
    data = certificates.html_to_pdf(html)
    assert data.startswith(b"%PDF")
    names, embedded = pdf_fonts(data)
    assert any("CJK" in n for n in names) and embedded


def test_issuance_certificate_after_cancellation_shows_only_the_new_numbers():
    owner, account, issued = household_with_units(6)
    old_serial = issued.blocks[0].serial
    app = issued.application
    cancellation = ledger.do_cancel(application=app, reason="电表倍率录入错误", actor=issued.issuer)
    app.refresh_from_db()
    new_blocks = ledger.do_issue_units(app, issuer=issued.issuer)
    app.refresh_from_db()
    html = certificates.issuance_html(app, verify_url="https://x.example/v/")
    assert new_blocks[0].serial in html
    assert new_blocks[0].serial.endswith("-00000007-00000012")
    assert old_serial not in html
    assert cancellation.number in html and "电表倍率录入错误" in html
