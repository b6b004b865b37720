"""Finance pages and API as the people using them see them: who may see and do what, refusals naming the field,
translated pages, the public estimator that saves nothing."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from lowcarbon.finance import services as svc
from lowcarbon.finance.models import FinancingProject, Interest
from lowcarbon.registry.models import Notification
from tests.factories import PASSWORD, make_user
from tests.finance.helpers import enterprise_owner, financier, project_data, published

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def client_for(user) -> Client:
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def api_for(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def test_owner_creates_draft_and_publishes_through_pages():
    owner = enterprise_owner()
    c = client_for(owner)
    resp = c.post("/finance/projects/new/", project_data(name="冲压车间屋顶"))
    assert resp.status_code == 302
    p = FinancingProject.objects.get()
    page = c.get(resp["Location"]).content.decode()
    assert "冲压车间屋顶" in page and "草稿" in page and "预期发电量" in page and "仅供参考，非报价" in page
    assert "性能比" in page and "晴空" in page  # the method is said on the page
    c.post(f"/finance/projects/{p.code}/action/", {"action": "publish"})
    p.refresh_from_db()
    assert p.state == "published"


def test_bad_project_form_names_fields_and_saves_nothing():
    c = client_for(enterprise_owner())
    resp = c.post("/finance/projects/new/", project_data(amount_cny="很多", community=""))
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "融资金额（元）：“很多”不是数字" in body and "社区：此项必填" in body
    assert FinancingProject.objects.count() == 0


def test_financier_sees_published_only_and_expresses_interest_owner_sees_lead():
    owner = enterprise_owner()
    draft = svc.do_create_project(owner, project_data(name="未发布草稿"))
    p = published(owner, name="已发布屋顶")
    fin = financier()
    fc = client_for(fin)
    listing = fc.get("/finance/").content.decode()
    assert "已发布屋顶" in listing and "未发布草稿" not in listing
    assert fc.get(f"/finance/projects/{draft.code}/").status_code == 404
    assert fc.get(f"/finance/projects/{p.code}/edit/").status_code == 403
    fc.post(
        f"/finance/projects/{p.code}/interest/",
        {"message": "愿意提供融资租赁", "amount_cny": "2000000", "terms": "8年"},
    )
    assert Interest.objects.filter(project=p, financier=fin).exists()
    owner_page = client_for(owner).get(f"/finance/projects/{p.code}/").content.decode()
    assert "愿意提供融资租赁" in owner_page and "2,000,000" in owner_page
    assert Notification.objects.filter(user=owner, link=f"/finance/projects/{p.code}/").exists()
    # another financier sees the project but not the first financier's lead
    other = client_for(financier()).get(f"/finance/projects/{p.code}/").content.decode()
    assert "愿意提供融资租赁" not in other and "提交融资意向" in other


def test_other_owner_and_household_cannot_reach_a_draft():
    owner = enterprise_owner()
    draft = svc.do_create_project(owner, project_data())
    for user in (enterprise_owner(), make_user("owner_household"), make_user("buyer")):
        c = client_for(user)
        assert c.get(f"/finance/projects/{draft.code}/").status_code == 404
        assert c.post(f"/finance/projects/{draft.code}/action/", {"action": "publish"}).status_code == 404
    draft.refresh_from_db()
    assert draft.state == "draft"
    assert client_for(make_user("owner_household")).get("/finance/").status_code == 403
    assert client_for(make_user("owner_household")).get("/finance/projects/new/").status_code == 403


def test_financier_cannot_publish_or_close_and_owner_cannot_express_interest():
    owner = enterprise_owner()
    p = published(owner)
    fc = client_for(financier())
    assert fc.post(f"/finance/projects/{p.code}/action/", {"action": "close"}).status_code == 403
    p.refresh_from_db()
    assert p.state == "published"
    assert (
        client_for(owner)
        .post(f"/finance/projects/{p.code}/interest/", {"message": "x", "amount_cny": "1"})
        .status_code
        == 403
    )


def test_recalculation_on_the_page_saves_nothing_and_errors_name_the_field():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    c = client_for(owner)
    page = c.get(f"/finance/projects/{p.code}/", {"capex_cny_per_kwp": "2800"}).content.decode()
    assert "2,800,000" in page and "未保存任何内容" in page
    bad = c.get(f"/finance/projects/{p.code}/", {"lifetime_years": "abc"}).content.decode()
    assert "运营年限：“abc”不是数字" in bad and "3,500,000" in bad
    p.refresh_from_db()
    assert p.assumptions["capex_cny_per_kwp"] == "3500"
    c.post(f"/finance/projects/{p.code}/action/", {"action": "save_assumptions", "capex_cny_per_kwp": "2800"})
    p.refresh_from_db()
    assert p.assumptions["capex_cny_per_kwp"] == "2800"


def test_english_page():
    owner = enterprise_owner()
    p = svc.do_create_project(owner, project_data())
    c = client_for(owner)
    c.cookies.load({"django_language": "en"})
    body = c.get(f"/finance/projects/{p.code}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Performance ratio against clear sky" in body and "indicative, not a quote" in body


def test_pipeline_for_admins_only_and_financier_approval():
    admin = make_user("registry_admin")
    owner = enterprise_owner()
    p = published(owner, amount_cny="1234567")
    svc.do_express_interest(financier(), p, {"message": "x", "amount_cny": "1000000"})
    pending = svc.do_register_financier(
        {
            "org_name": "榄城银行",
            "username": "lanbank",
            "real_name": "王五",
            "phone": "139",
            "password": "Green-Loans-2026",
        }
    )
    ac = client_for(admin)
    body = ac.get("/finance/pipeline/").content.decode()
    assert "1,234,567" in body and "1,000,000" in body and "榄城银行" in body
    assert Client().login(username="lanbank", password="Green-Loans-2026") is False
    ac.post("/finance/pipeline/", {"user_id": str(pending.pk)})
    assert Client().login(username="lanbank", password="Green-Loans-2026") is True
    assert client_for(owner).get("/finance/pipeline/").status_code == 403
    assert api_for(owner).get("/api/v1/finance/pipeline/").status_code == 403
    totals = api_for(admin).get("/api/v1/finance/pipeline/").json()["totals"]
    assert totals["amount_cny"] == "1234567.00" and totals["projects"] == 1


def test_signup_page_refuses_bad_input_and_registers():
    c = Client()
    body = c.post(
        "/finance/financiers/signup/", {"org_name": "", "username": "x1", "password": "1"}
    ).content.decode()
    assert "机构名称：此项必填" in body
    ok = c.post(
        "/finance/financiers/signup/",
        {
            "org_name": "小榄租赁",
            "username": "lease1",
            "real_name": "赵六",
            "phone": "138",
            "password": "Green-Lease-2026",
        },
    ).content.decode()
    assert "审核通过后即可登录" in ok


def test_estimator_is_public_and_saves_nothing_draft_needs_owner():
    anon = Client()
    data = {
        "community": "dongqu",
        "name": ["车间", ""],
        "area_m2": ["650", ""],
        "tilt_deg": ["", ""],
        "azimuth_deg": ["", ""],
    }
    body = anon.post("/finance/estimator/", data).content.decode()
    assert "100.00" in body and "350,000" in body  # 650 m² / 6.5 = 100 kWp × 3,500 CNY
    resp = anon.post("/finance/estimator/", {**data, "op": "draft"})
    assert resp.status_code == 302 and "/login/" in resp["Location"]
    assert FinancingProject.objects.count() == 0
    bad = anon.post("/finance/estimator/", {"name": ["车间"], "area_m2": ["-3"]}).content.decode()
    assert "第 1 行（车间）" in bad and "可用屋顶面积" in bad
    owner = enterprise_owner()
    resp = client_for(owner).post(
        "/finance/estimator/", {**data, "op": "draft", "project_name": "园区", "financing_type": "lease"}
    )
    assert resp.status_code == 302
    p = FinancingProject.objects.get()
    assert p.capacity_kwp == D("100.00") and p.amount_cny == D("350000") and p.financing_type == "lease"


def test_api_flow_and_errors():
    owner = enterprise_owner()
    api = api_for(owner)
    resp = api.post(
        "/api/v1/finance/projects/", {**project_data(), "systems": []}, content_type="application/json"
    )
    assert resp.status_code == 201, resp.content
    code = resp.json()["code"]
    calc = resp.json()["calculation"]
    assert (
        D(calc["capex_cny"]) == D(3500000) and calc["payback_year"] is not None and len(calc["years"]) == 26
    )
    bad = api.post(
        "/api/v1/finance/projects/",
        project_data(capacity_kwp="-1", roof_area_m2=""),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "capacity_kwp"
    assert (
        api.get(f"/api/v1/finance/projects/{code}/calculation/?discount_rate_percent=200").status_code == 400
    )
    other = api.get(f"/api/v1/finance/projects/{code}/calculation/?capex_cny_per_kwp=3000").json()
    assert D(other["capex_cny"]) == D(3000000)
    fin = financier()
    fapi = api_for(fin)
    assert fapi.get(f"/api/v1/finance/projects/{code}/").status_code == 404
    assert (
        api.post(
            f"/api/v1/finance/projects/{code}/actions/",
            {"action": "publish"},
            content_type="application/json",
        ).status_code
        == 200
    )
    assert [p["code"] for p in fapi.get("/api/v1/finance/projects/").json()["results"]] == [code]
    r = fapi.post(
        f"/api/v1/finance/projects/{code}/interests/",
        {"message": "hi", "amount_cny": "100000"},
        content_type="application/json",
    )
    assert r.status_code == 201
    again = fapi.post(
        f"/api/v1/finance/projects/{code}/interests/",
        {"message": "hi", "amount_cny": "1"},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert len(api.get(f"/api/v1/finance/projects/{code}/interests/").json()) == 1
    assert api_for(financier()).get(f"/api/v1/finance/projects/{code}/interests/").json() == []
    assert (
        fapi.post(
            f"/api/v1/finance/projects/{code}/actions/", {"action": "close"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert api_for(enterprise_owner()).get(f"/api/v1/finance/projects/{code}/").status_code == 404


def test_api_estimate_is_public():
    resp = Client().post(
        "/api/v1/finance/estimate/",
        {"roofs": [{"name": "A", "area_m2": "650"}, {"name": "B", "area_m2": "1300", "azimuth_deg": "90"}]},
        content_type="application/json",
    )
    assert resp.status_code == 200
    data = resp.json()
    assert data["total"]["capacity_kwp"] == "300.00" and data["grid_factor"] == "MEE2019-SOUTH-CM"
    bad = Client().post(
        "/api/v1/finance/estimate/", {"roofs": [{"area_m2": "x"}]}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "area_m2"
