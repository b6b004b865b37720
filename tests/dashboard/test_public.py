"""The public dashboard: no log-in, figures equal to sums computed independently from the rollup, quantification
and registry tables, k-anonymous locations, the time of the data, the cache, both languages."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client

from lowcarbon.dashboard import services
from lowcarbon.metering.models import DailyRollup, Meter, MonthlyRollup
from lowcarbon.methodology.models import Quantification
from lowcarbon.pv.models import PVSystem
from lowcarbon.registry import ledger
from tests.dashboard.helpers import system_in
from tests.factories import make_user
from tests.registry.cert_helpers import issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def town(media_root):
    """Seven households in Dongqu, two in Xiqu next to it, one alone in far Shengfeng; one enterprise in Xinshi.
    2025 generation quantified for all; units issued to one household and partly retired."""
    people = [make_user("owner_household") for _ in range(10)]
    systems = []
    for i, p in enumerate(people[:7]):
        systems.append(system_in("dongqu", p, capacity_kwp=f"{5 + i}", kwh=f"{500 + 10 * i}"))
    for p in people[7:9]:
        systems.append(system_in("xiqu", p, capacity_kwp="4.2", kwh="420"))
    lone = system_in("shengfeng", people[9], capacity_kwp="9.9", kwh="990")
    systems.append(lone)
    ent_owner = make_user("owner_enterprise")
    from tests.factories import make_org

    org = make_org("enterprise")
    systems.append(system_in("xinshi", ent_owner, org, capacity_kwp="480", kwh="40000"))
    DailyRollup.objects.create(
        meter_id=Meter.objects.get(subject_kind="pv_system", subject_id=lone.pk).pk,
        day=date(2025, 12, 31),
        energy=Decimal("30"),
        n_readings=24,
        covered_s=86400,
    )
    account = ledger.account_for_user(people[0])
    issue([(systems[0], 6, account)], applicant=people[0])
    ledger.do_retire(
        account=account,
        quantity=2,
        beneficiary="小榄镇马拉松",
        purpose="event_neutrality",
        retired_on=date(2025, 12, 30),
        actor=people[0],
    )
    return {"systems": systems, "lone": lone, "people": people}


def test_public_page_needs_no_login_and_states_the_time_of_the_data(town):
    resp = Client().get("/dashboard/")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "数据计算于" in body and "北京时间" in body
    assert "电表读数截至 2025-12-31" in body
    assert "最近一次核算" in body and "登记簿记录截至" in body
    assert "echarts.min.js" in body


def test_figures_equal_independent_sums(town):
    fig = services.compute_public_figures()
    systems = PVSystem.objects.all()
    assert fig["totals"]["systems"] == systems.count() == 11
    assert Decimal(str(fig["totals"]["capacity_kwp"])) == sum(s.capacity_kwp for s in systems)
    s = fig["series"]
    i = s["months"].index("2025-06")
    pv_meters = Meter.objects.filter(subject_kind="pv_system").values_list("id", flat=True)
    expected_gen = sum(
        r.energy for r in MonthlyRollup.objects.filter(meter_id__in=pv_meters, month="2025-06-01")
    )
    assert (
        Decimal(str(s["generation_kwh"][i])) == expected_gen == Decimal(7 * 500 + 210 + 2 * 420 + 990 + 40000)
    )
    expected_er = sum(
        q.er_kg for q in Quantification.objects.filter(month="2025-06-01", superseded_at__isnull=True)
    )
    assert Decimal(str(s["er_kg"][i])) == expected_er.quantize(Decimal("0.1"))
    assert fig["supply"] == {"issued": 6, "held": 4, "retired": 2, "cancelled": 0}
    assert sum(s["issued"]) == 6 and sum(s["retired"]) == 2
    assert s["retired"][s["months"].index("2025-12")] == 2
    # capacity connected by each month is cumulative
    assert Decimal(str(s["capacity_kwp"][-1])) == sum(x.capacity_kwp for x in systems)


def test_map_is_k_anonymous(town):
    fig = services.compute_public_figures()
    areas = fig["areas"]
    assert areas and all(a["systems"] >= 5 for a in areas)
    assert sum(a["systems"] for a in areas) == 11
    # the lone Shengfeng household is never an area of its own
    assert ["shengfeng"] not in [a["keys"] for a in areas]
    # nothing on the page or in the JSON carries a system's own coordinates or code
    body = (
        Client().get("/dashboard/").content.decode() + Client().get("/dashboard/data.json").content.decode()
    )
    for system in town["systems"]:
        assert system.code not in body
        assert f"{system.latitude:.5f}" not in body and f"{float(system.latitude)}" not in body
    # area points are community centres
    data = json.loads(Client().get("/dashboard/data.json").content)
    from lowcarbon.pv.models import Community

    centres = {c.code: (float(c.latitude), float(c.longitude)) for c in Community.objects.all()}
    for a in data["areas"]:
        lats = [centres[k][0] for k in a["keys"]]
        assert min(lats) - 1e-3 <= a["lat"] <= max(lats) + 1e-3


def test_owner_type_split_hides_small_household_counts(media_root):
    for _ in range(3):
        system_in("dongqu", make_user("owner_household"))
    from tests.factories import make_org

    for _ in range(6):
        system_in("dongqu", make_user("owner_enterprise"), make_org("enterprise"))
    fig = services.compute_public_figures()
    cells = {c["key"]: c for c in fig["by_owner_type"]}
    assert cells["household"]["systems"] is None and cells["household"]["capacity_kwp"] is None
    # the complementary cell is hidden too, so the total minus the shown cells does not give the households
    assert cells["enterprise"]["systems"] is None or cells["institution"]["systems"] is None
    body = Client().get("/dashboard/").content.decode()
    assert "不公开" in body


def test_nothing_published_below_k(media_root):
    system_in("dongqu", make_user("owner_household"), kwh="500")
    fig = services.compute_public_figures()
    assert fig["publishable"] is False
    assert fig["areas"] == [] and fig["totals"]["systems"] is None
    assert all(v is None for v in fig["series"]["generation_kwh"])
    assert all(v is None for v in fig["series"]["er_kg"])
    body = Client().get("/dashboard/").content.decode()
    assert "少于 5 个" in body or "少于5个" in body


def test_figures_are_cached_briefly(town, django_assert_max_num_queries):
    services.public_figures()
    system_in("dongqu", make_user("owner_household"), capacity_kwp="100")
    with django_assert_max_num_queries(3):  # session-free page: the figures come from the cache
        assert services.public_figures()["totals"]["systems"] == 11
    assert services.public_figures(refresh=True)["totals"]["systems"] == 12


def test_english_page(town):
    c = Client()
    c.post("/i18n/setlang/", {"language": "en", "next": "/dashboard/"})
    body = c.get("/dashboard/").content.decode()
    assert "public dashboard" in body and "Figures computed at" in body
    assert "Dongqu" in body
    assert not re.search(r"[\u4e00-\u9fff]{2,}社区", body.split("dashboard-data")[0].split("<main>")[1])


def test_market_panel_uses_the_market_statistics(town):
    stats = services.market_stats()
    fig = services.compute_public_figures()
    if stats is None:
        assert fig["market"] is None
        return
    totals = stats.totals()
    assert fig["market"]["trades"] == totals["trades"]
    assert fig["market"]["volume_t"] == totals["volume_t"]
