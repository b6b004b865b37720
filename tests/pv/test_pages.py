"""PV pages: who sees which system, the detail page with its months and chart data, registration, bulk upload,
meter replacement, the plausibility queue, and the language of the pages."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from lowcarbon.accounts.models import Role
from lowcarbon.metering.models import Meter, MeterReplacement, MonthlyRollup
from lowcarbon.methodology.models import GridFactor, Methodology, Quantification
from lowcarbon.pv import bulk
from lowcarbon.pv.models import Evidence, ManagementConsent, PlausibilityFlag, PVSystem
from lowcarbon.pv.services import do_revoke_consent
from tests.factories import grant_consent, make_org, make_system, make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR = 2025


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def owners(db):
    a = make_user(Role.OWNER_HOUSEHOLD, real_name="麦润标", phone="13800138000")
    b = make_user(Role.OWNER_HOUSEHOLD, real_name="李四", phone="13900139000")
    return a, make_system(a), b, make_system(b)


def _with_data(system: PVSystem) -> None:
    """May 2025: 600 kWh metered, quantified at the 2019 southern CM, and a plausibility flag."""
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
    MonthlyRollup.objects.create(
        meter_id=meter.pk, month=date(YEAR, 5, 1), energy=Decimal(600), n_readings=744
    )
    factor = GridFactor.objects.get(code="MEE2019-SOUTH-CM")
    Quantification.objects.create(
        system_id=system.pk,
        month=date(YEAR, 5, 1),
        methodology=Methodology.objects.order_by("-effective_from").first(),
        factor=factor,
        ef_cm=Decimal("0.6565"),
        generation_kwh=Decimal(600),
        export_kwh=Decimal(0),
        er_kg=Decimal("393.900"),
    )
    PlausibilityFlag.objects.create(
        system=system,
        month=date(YEAR, 5, 1),
        code="monthly_yield_high",
        severity="warn",
        value=Decimal(120),
        limit=Decimal(160),
    )


# --- list and detail ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_sees_only_own_system_in_list_and_detail(client, owners):
    a, sys_a, b, sys_b = owners
    login(client, a)
    page = client.get(reverse("pv:system_list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert sys_a.code in html and sys_b.code not in html
    table = html.split("<main>")[1]
    assert "麦**" in table and "麦润标" not in table  # masked owner name (the header greets the user by name)
    assert client.get(reverse("pv:system_detail", args=[sys_b.code])).status_code == 404
    assert client.get(reverse("pv:system_detail", args=["PV-NOSUCH"])).status_code == 404
    assert client.get(reverse("pv:replace_meter", args=[sys_b.code])).status_code == 404


@pytest.mark.django_db
def test_list_filters_and_year_totals(client, owners):
    a, sys_a, _b, _sys_b = owners
    second = make_system(a)
    second.community = type(second.community).objects.get(code="yongning")
    second.save()
    reviewer = make_user(Role.REVIEWER_CITY)
    login(client, reviewer)
    html = client.get(reverse("pv:system_list"), {"community": "yongning"}).content.decode()
    assert second.code in html and sys_a.code not in html
    html = client.get(reverse("pv:system_list"), {"owner_type": "enterprise"}).content.decode()
    assert second.code not in html

    meter = Meter.objects.get(subject_kind="pv_system", subject_id=sys_a.pk)
    this_year = timezone.localdate().year
    MonthlyRollup.objects.create(meter_id=meter.pk, month=date(this_year, 3, 1), energy=Decimal("1234.5"))
    assert "1234.5" in client.get(reverse("pv:system_list")).content.decode()
    assert "1,234.5" in client.get(reverse("pv:system_list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_detail_months_chart_and_masking(client, owners):
    a, sys_a, _b, _sys_b = owners
    _with_data(sys_a)
    login(client, a)
    resp = client.get(
        reverse("pv:system_detail", args=[sys_a.code]), {"year": YEAR}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "138****8000" in html and "13800138000" not in html
    assert "MEE2019-SOUTH-CM" in html and "393.9" in html and "600.0" in html
    assert "unusually high" in html  # the open flag in plain words
    assert "vendor/echarts/echarts.min.js" in html
    chart = json.loads(html.split('id="pv-chart-data" type="application/json">')[1].split("</script>")[0])
    assert chart["generation"][4] == 600.0 and chart["generation"][0] is None
    assert chart["er"][4] == 393.9
    bound = [v for v in chart["bound"] if v is not None]
    assert len(bound) == 12 and all(v > 0 for v in bound)
    assert bound[4] > 600  # 5 kWp under a clear May sky produce far more than 600 kWh


@pytest.mark.django_db
def test_reviewer_sees_every_system_but_cannot_replace_meters(client, owners):
    _a, sys_a, _b, sys_b = owners
    reviewer = make_user(Role.REVIEWER_TOWN)
    login(client, reviewer)
    html = client.get(reverse("pv:system_list")).content.decode()
    assert sys_a.code in html and sys_b.code in html
    detail = client.get(reverse("pv:system_detail", args=[sys_b.code])).content.decode()
    assert "小榄镇测试路***" in detail  # household address masked for anyone but its owner
    assert client.get(reverse("pv:replace_meter", args=[sys_b.code])).status_code == 403


@pytest.mark.django_db
def test_aggregator_sees_consented_system_until_revoked(client, owners):
    _a, sys_a, b, sys_b = owners
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    consent = grant_consent(sys_b, org, b)
    login(client, agent)
    assert client.get(reverse("pv:system_detail", args=[sys_b.code])).status_code == 200
    assert client.get(reverse("pv:system_detail", args=[sys_a.code])).status_code == 404
    html = client.get(reverse("pv:system_list")).content.decode()
    assert sys_b.code in html and sys_a.code not in html

    login(client, b)
    resp = client.post(reverse("pv:revoke_consent", args=[sys_b.code, consent.pk]))
    assert resp.status_code == 302
    assert ManagementConsent.objects.get(pk=consent.pk).revoked_at is not None
    login(client, agent)
    assert client.get(reverse("pv:system_detail", args=[sys_b.code])).status_code == 404
    assert sys_b.code not in client.get(reverse("pv:system_list")).content.decode()


@pytest.mark.django_db
def test_login_required(client, owners):
    _a, sys_a, _b, _sys_b = owners
    for url in (
        reverse("pv:system_list"),
        reverse("pv:system_detail", args=[sys_a.code]),
        reverse("pv:register"),
    ):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login/" in resp["Location"]


# --- language ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_in_chinese_by_default_and_english_on_request(client, owners):
    a, sys_a, _b, _sys_b = owners
    login(client, a)
    zh = client.get(reverse("pv:system_detail", args=[sys_a.code])).content.decode()
    assert 'lang="zh-hans"' in zh and sys_a.community.name_zh in zh
    en = client.get(
        reverse("pv:system_detail", args=[sys_a.code]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'lang="en"' in en and "Grid-connection date" in en and sys_a.community.name_en in en
    client.cookies["django_language"] = "en"
    listing = client.get(reverse("pv:system_list")).content.decode()
    assert 'lang="en"' in listing and "Avoided emissions" in listing and sys_a.community.name_en in listing
    register = client.get(reverse("pv:register")).content.decode()
    assert "Register a PV system" in register and "Myself (household)" in register


@pytest.mark.django_db
def test_every_page_renders_in_both_languages(client, owners):
    a, sys_a, _b, _sys_b = owners
    admin = make_user(Role.REGISTRY_ADMIN)
    login(client, admin)
    urls = [
        # url, a visible Chinese string (data or Django's own catalogue), a visible English string
        (reverse("pv:system_list"), "宝丰社区", "PV systems"),
        (reverse("pv:system_detail", args=[sys_a.code]), sys_a.community.name_zh, "Meters"),
        (reverse("pv:register"), "宝丰社区", "Register a PV system"),
        (reverse("pv:bulk_register"), "便于识别的名称", "Bulk registration"),
        (reverse("pv:replace_meter", args=[sys_a.code]), "首页", "Record a meter replacement"),
        (reverse("pv:flag_queue"), "全部", "Plausibility review"),
    ]
    for url, chinese, english in urls:
        zh = client.get(url)
        assert zh.status_code == 200, url
        assert 'lang="zh-hans"' in zh.content.decode() and chinese in zh.content.decode(), url
        en = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert en.status_code == 200 and english in en.content.decode(), url
        assert chinese not in en.content.decode(), url


# --- registration ---------------------------------------------------------------------------------------------


def form_data(**over):
    data = {
        "owner_kind": "self",
        "name": "我家屋顶",
        "address": "小榄镇北区大道6号",
        "community": "beiqu",
        "latitude": "22.685",
        "longitude": "113.252",
        "capacity_kwp": "8.4",
        "tilt_deg": "15",
        "azimuth_deg": "170",
        "grid_connection_date": "2024-09-15",
        "metering": "generation_meter",
        "meter_serial": "ZS-2024-778899",
        "initial_register": "",
        "installer": "",
    }
    data.update(over)
    return data


@pytest.mark.django_db
def test_owner_registers_through_the_page_with_evidence_and_claim(client, media_root):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    login(client, owner)
    data = form_data(
        claim_0_programme="gec",
        claim_0_start="2024-09-15",
        claim_0_end="2024-12-31",
        claim_0_reference="GEC-22",
        evidence_grid_acceptance=SimpleUploadedFile("并网验收单.pdf", b"%PDF-1.4 test"),
    )
    resp = client.post(reverse("pv:register"), data)
    assert resp.status_code == 302
    system = PVSystem.objects.get(owner_user=owner)
    assert resp["Location"] == reverse("pv:system_detail", args=[system.code])
    assert system.programme_claims.get().reference == "GEC-22"
    ev = Evidence.objects.get(system=system)
    assert ev.original_name == "并网验收单.pdf"
    download = client.get(reverse("pv:evidence_file", args=[system.code, ev.pk]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"%PDF-1.4 test"
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    login(client, stranger)
    assert client.get(reverse("pv:evidence_file", args=[system.code, ev.pk])).status_code == 404


@pytest.mark.django_db
def test_registration_errors_shown_on_their_fields_and_nothing_saved(client):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    make_system(owner, serial="ZS-2024-778899")
    login(client, owner)
    before = PVSystem.objects.count()
    resp = client.post(
        reverse("pv:register"),
        form_data(
            capacity_kwp="6500",
            latitude="30.1",
            claim_0_programme="ccer",
            claim_0_start="2024-05-01",
            claim_0_end="2024-01-01",
        ),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert resp.status_code == 200
    form = resp.context["form"]
    assert set(form.errors) == {"capacity_kwp", "latitude", "claim_0_end", "meter_serial"}
    html = resp.content.decode()
    assert "above the methodology limit of 6000 kWp" in html
    assert "ZS-2024-778899" in html
    assert PVSystem.objects.count() == before


@pytest.mark.django_db
def test_aggregator_registers_household_through_the_page(client):
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    login(client, agent)
    resp = client.post(
        reverse("pv:register"),
        form_data(
            owner_kind="household",
            owner_real_name="陈大文",
            owner_phone="13712345678",
            aggregator_org=str(org.pk),
            consent_document="XL-2025-0042",
        ),
    )
    assert resp.status_code == 302, resp.context["form"].errors if resp.context else resp
    system = PVSystem.objects.get(owner_user__phone="13712345678")
    assert system.consents.get().document == "XL-2025-0042"
    assert client.get(reverse("pv:system_detail", args=[system.code])).status_code == 200


@pytest.mark.django_db
def test_register_forbidden_without_a_registering_role(client):
    login(client, make_user(Role.REVIEWER_CITY))
    assert client.get(reverse("pv:register")).status_code == 403
    assert client.get(reverse("pv:bulk_register")).status_code == 403


# --- bulk -------------------------------------------------------------------------------------------------------


def _bulk_csv(rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.header for c in bulk.COLUMNS])
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode("gbk")


def _bulk_row(n, **over):
    values = {
        "name": f"户{n}",
        "owner_real_name": f"户主{n}",
        "owner_phone": f"1360000{n:04d}",
        "address": f"小榄镇路{n}号",
        "community": "shakou",
        "latitude": "22.69",
        "longitude": "113.24",
        "capacity_kwp": "5",
        "tilt_deg": "20",
        "azimuth_deg": "180",
        "grid_connection_date": "2024-01-10",
        "metering": "generation_meter",
        "meter_serial": f"PAGE-{n:04d}",
        "consent_document": f"C-{n}",
    }
    values.update(over)
    return [values.get(c.key, "") for c in bulk.COLUMNS]


@pytest.mark.django_db
def test_bulk_page_reports_rows_and_columns_then_registers(client):
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    login(client, agent)
    page = client.get(reverse("pv:bulk_register"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "?format=xlsx" in page and "?format=csv" in page

    bad = _bulk_csv([_bulk_row(1), _bulk_row(2, tilt_deg="120"), _bulk_row(3, meter_serial="PAGE-0001")])
    resp = client.post(
        reverse("pv:bulk_register"),
        {"file": SimpleUploadedFile("hh.csv", bad), "aggregator_org": str(org.pk)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    html = resp.content.decode()
    table = html.split('id="bulk-problems"')[1]
    assert ">3<" in table and "Tilt (°)" in table and "outside the allowed range" in table
    assert ">4<" in table and "Meter serial" in table
    assert not PVSystem.objects.exists()

    zh = client.post(
        reverse("pv:bulk_register"),
        {"file": SimpleUploadedFile("hh.csv", bad), "aggregator_org": str(org.pk)},
    ).content.decode()
    assert "倾角(°)" in zh.split('id="bulk-problems"')[1]

    good = _bulk_csv([_bulk_row(1), _bulk_row(2)])
    resp = client.post(
        reverse("pv:bulk_register"),
        {"file": SimpleUploadedFile("hh.csv", good), "aggregator_org": str(org.pk)},
    )
    created = resp.content.decode().split('id="bulk-created"')[1]
    codes = list(PVSystem.objects.values_list("code", flat=True))
    assert len(codes) == 2 and all(c in created for c in codes)


@pytest.mark.django_db
def test_bulk_templates_download(client):
    org = make_org("aggregator")
    login(client, make_user(Role.AGGREGATOR, org=org))
    xlsx = client.get(reverse("pv:bulk_template"), {"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert "spreadsheetml" in xlsx["Content-Type"]
    assert list(bulk.parse_upload(io.BytesIO(xlsx.content), "t.xlsx")) == []
    c = client.get(reverse("pv:bulk_template"), {"format": "csv"})
    assert c.content.decode("utf-8-sig").startswith("*系统名称 / System name")
    login(client, make_user(Role.OWNER_HOUSEHOLD))
    assert client.get(reverse("pv:bulk_template")).status_code == 403


# --- meter replacement ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_replace_meter_page(client, owners):
    a, sys_a, _b, _sys_b = owners
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=sys_a.pk)
    meter.installed_at = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    meter.save()
    login(client, a)
    future = (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    resp = client.post(
        reverse("pv:replace_meter", args=[sys_a.code]),
        {
            "old_meter": meter.pk,
            "new_serial": "NEW-METER-01",
            "replaced_at": future,
            "old_final_reading": "100",
            "new_initial_reading": "0",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert resp.status_code == 200 and "lies in the future" in resp.content.decode()
    resp = client.post(
        reverse("pv:replace_meter", args=[sys_a.code]),
        {
            "old_meter": meter.pk,
            "new_serial": "NEW-METER-01",
            "replaced_at": "2025-04-02T09:30",
            "old_final_reading": "5321.7",
            "new_initial_reading": "0.0",
            "work_order": "GD-WO-1",
        },
    )
    assert resp.status_code == 302
    rep = MeterReplacement.objects.get()
    assert rep.new_meter.serial == "NEW-METER-01"
    assert rep.replaced_at == datetime(2025, 4, 2, 9, 30, tzinfo=SHANGHAI)
    detail = client.get(reverse("pv:system_detail", args=[sys_a.code])).content.decode()
    assert "NEW-METER-01" in detail and "GD-WO-1" in detail


# --- plausibility queue -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_flag_queue_lists_and_clears_with_note(client, owners):
    _a, sys_a, _b, sys_b = owners
    flag = PlausibilityFlag.objects.create(
        system=sys_b,
        month=date(YEAR, 7, 1),
        code="above_clear_sky",
        severity="reject",
        value=Decimal("1400.5"),
        limit=Decimal("980.2"),
    )
    PlausibilityFlag.objects.filter(pk=flag.pk).update(detected_at=timezone.now() - timedelta(days=9))
    cleared = PlausibilityFlag.objects.create(
        system=sys_a,
        month=date(YEAR, 6, 1),
        code="zero_month",
        severity="warn",
        value=0,
        limit=0,
        cleared_at=timezone.now(),
    )
    reviewer = make_user(Role.REVIEWER_CITY)
    login(client, reviewer)
    html = client.get(reverse("pv:flag_queue"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    table = html.split('id="flag-queue"')[1]
    assert sys_b.code in table and sys_a.code not in table
    assert "clear sky" in table and "1,400.5" in table and ">9<" in table
    assert cleared.pk not in [r["flag"].pk for r in client.get(reverse("pv:flag_queue")).context["rows"]]

    resp = client.post(
        reverse("pv:clear_flag", args=[flag.pk]), {"note": ""}, HTTP_ACCEPT_LANGUAGE="en", follow=True
    )
    assert "Explain in a note" in resp.content.decode()
    assert PlausibilityFlag.objects.get(pk=flag.pk).cleared_at is None

    resp = client.post(
        reverse("pv:clear_flag", args=[flag.pk]), {"note": "Meter checked on site; reading confirmed."}
    )
    assert resp.status_code == 302
    flag.refresh_from_db()
    assert flag.cleared_at is not None and flag.cleared_by == reviewer

    login(client, make_user(Role.OWNER_HOUSEHOLD))
    assert client.get(reverse("pv:flag_queue")).status_code == 403
    assert client.post(reverse("pv:clear_flag", args=[flag.pk]), {"note": "x"}).status_code == 403


@pytest.mark.django_db
def test_owner_grants_consent_on_the_page(client, owners):
    a, sys_a, _b, _sys_b = owners
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    login(client, a)
    resp = client.post(
        reverse("pv:grant_consent", args=[sys_a.code]), {"aggregator": org.pk, "document": "SIGNED-1"}
    )
    assert resp.status_code == 302
    consent = ManagementConsent.objects.get(system=sys_a)
    assert consent.granted_by == a
    login(client, agent)
    assert client.get(reverse("pv:system_detail", args=[sys_a.code])).status_code == 200
    do_revoke_consent(consent, actor=a)
    assert client.get(reverse("pv:system_detail", args=[sys_a.code])).status_code == 404
