"""Browser journeys in headless Chromium (Playwright driving the Debian chromium binary), as a new user would try
the platform: a household sees a year of generation and avoided emissions in Chinese, an aggregator bulk-registers
systems and uploads a readings file with bad rows, and the pages work in English. Screenshots are saved under
test-artifacts/ for people to look at."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_household_aggregator_and_english(live_server, browser, demo, tmp_path):
    from django.db.models import Sum

    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.models import PVSystem

    base = live_server.url
    system = PVSystem.objects.get(owner_user__username="household01")
    er = Quantification.objects.filter(
        system_id=system.id, superseded_at__isnull=True, month__year=2025
    ).aggregate(s=Sum("er_kg"))["s"]
    assert er and er > 3000  # a 6.5 kWp roof avoids a few tonnes a year

    # --- a household owner, in Chinese --------------------------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "household01")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    page.goto(f"{base}/pv/")
    assert system.code in page.content()
    shot(page, "household-system-list-zh")
    page.goto(f"{base}/pv/systems/{system.code}/?year=2025")
    page.wait_for_function("document.querySelector('canvas') !== null")
    body = page.content()
    assert system.name in body
    # the year's avoided emissions as computed by the platform appear on the page (thousands separator tolerant)
    shown = f"{er:,.0f}"
    assert shown in body or shown.replace(",", "") in body, shown
    shot(page, "household-system-detail-zh")
    # another household's system is not reachable
    other = PVSystem.objects.get(owner_user__username="household02")
    resp = page.goto(f"{base}/pv/systems/{other.code}/")
    assert resp.status == 404
    ctx.close()

    # --- the aggregator: bulk registration and a readings file with bad rows ------------------------------------
    from lowcarbon.pv import bulk

    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "aggregator")
    values = [
        {
            "name": "测试户一光伏",
            "owner_real_name": "杜文强",
            "owner_phone": "13711110001",
            "address": "中山市小榄镇新市路8号",
            "community": "xinshi",
            "latitude": "22.678",
            "longitude": "113.27",
            "capacity_kwp": "5.5",
            "tilt_deg": "20",
            "azimuth_deg": "180",
            "grid_connection_date": "2024-03-01",
            "metering": "generation_meter",
            "meter_serial": "E2E-BULK-0001",
            "consent_document": "授权书 E2E-1",
        },
        {
            "name": "测试户二光伏",
            "owner_real_name": "谭美珍",
            "owner_phone": "13711110002",
            "address": "中山市小榄镇东区路9号",
            "community": "dongqu",
            "latitude": "22.670",
            "longitude": "113.262",
            "capacity_kwp": "4.0",
            "tilt_deg": "15",
            "azimuth_deg": "170",
            "grid_connection_date": "2024-04-01",
            "metering": "bidirectional",
            "meter_serial": "E2E-BULK-0002",
            "consent_document": "授权书 E2E-2",
        },
    ]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.header for c in bulk.COLUMNS])
    for v in values:
        w.writerow([v.get(c.key, "") for c in bulk.COLUMNS])
    bulk_file = tmp_path / "bulk.csv"
    bulk_file.write_text(buf.getvalue(), encoding="utf-8-sig")
    page.goto(f"{base}/pv/bulk/")
    page.set_input_files("input[type=file]", str(bulk_file))
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    shot(page, "aggregator-bulk-result-zh")
    assert PVSystem.objects.filter(name__in=["测试户一光伏", "测试户二光伏"]).count() == 2

    readings = tmp_path / "readings.csv"
    rows = ["meter_serial,timestamp,interval_minutes,energy,unit"]
    rows += [f"E2E-BULK-0001,2025-05-01T{h:02d}:00:00+08:00,60,{0.3 * (h % 7):.2f},kWh" for h in range(1, 24)]
    rows += [
        "E2E-BULK-0001,2025-05-01T12:00:00+08:00,60,9.99,kWh",  # conflicting duplicate
        "E2E-BULK-0001,2025-05-02T12:00:00+08:00,60,-1,kWh",  # negative
        "NO-SUCH-METER,2025-05-01T12:00:00+08:00,60,1,kWh",
    ]  # unknown meter
    readings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    page.goto(f"{base}/metering/upload/")
    page.set_input_files("input[type=file]", str(readings))
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    body = page.content()
    assert "conflicting_duplicate" in body and "negative_energy" in body and "unknown_meter" in body
    assert "NO-SUCH-METER" in body  # the original text of the rejected row is shown
    shot(page, "aggregator-batch-with-rejections-zh")
    ctx.close()

    # --- English --------------------------------------------------------------------------------------------------
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, base, "household01")
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/pv/systems/{system.code}/?year=2025")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Avoided emissions" in page.content()
    shot(page, "household-system-detail-en")
    ctx.close()
