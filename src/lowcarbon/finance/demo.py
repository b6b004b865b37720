"""Demo part of investment and financing: a financial institution with its user `financier`, an industrial-park
rooftop programme of enterprise1 and the aggregator's household programme (both published), a school draft, and
one lead. Loaded through the finance services, after the people and systems of the main demo exist."""

from __future__ import annotations

from typing import Any

DEMO_ORDER = 120


def load_demo_part(stdout: Any = None) -> None:
    from lowcarbon.accounts.models import Membership, Organisation, Role, RoleGrant, User
    from lowcarbon.demo import DEMO_PASSWORD, fake_id_number
    from lowcarbon.finance import services as svc
    from lowcarbon.finance.models import FinancingProject
    from lowcarbon.pv.models import PVSystem

    if User.objects.filter(username="financier").exists():
        return
    if stdout is not None:
        stdout.write("Financing: a financier, projects and a lead …")
    org = Organisation.objects.create(
        name="中山绿色融资租赁有限公司",
        name_en="Zhongshan Green Finance Leasing Co., Ltd.",
        kind=Organisation.Kind.FINANCIAL,
        credit_code="91442000MA4U000021",
        address="中山市东区",
    )
    financier = User.objects.create_user(
        username="financier", password=DEMO_PASSWORD, real_name="谭嘉明", phone="13800000022"
    )
    financier.set_id_number(fake_id_number(121, __import__("datetime").date(1985, 3, 12)))
    financier.save()
    RoleGrant.objects.create(user=financier, role=Role.FINANCIER, organisation=org)
    Membership.objects.create(user=financier, organisation=org, level=Membership.Level.ADMIN)

    ent1 = User.objects.get(username="enterprise1")
    ent_org = RoleGrant.objects.get(user=ent1, role=Role.OWNER_ENTERPRISE).organisation
    existing = list(PVSystem.objects.filter(owner_org=ent_org).values_list("code", flat=True))
    park = svc.do_create_project(
        ent1,
        {
            "owner_org": f"org:{ent_org.pk}",
            "name": "小榄工业园区五金厂房屋顶光伏扩容",
            "community": "dongqu",
            "roof_area_m2": "9800",
            "amount_cny": "5200000",
            "financing_type": "emc",
            "tilt_deg": "8",
            "azimuth_deg": "180",
            "self_consumption_percent": "80",
            "description": "三栋钢结构厂房（冲压车间、装配车间、仓库）屋顶，可用面积约9,800平方米；白天生产负荷稳定，"
            "自发自用比例高。已有480 kWp光伏并网运行，本期扩容寻求合同能源管理合作方。",
        },
        existing,
    )
    svc.do_publish(ent1, park)

    agg = User.objects.get(username="aggregator")
    agg_org = RoleGrant.objects.get(user=agg, role=Role.AGGREGATOR).organisation
    households = svc.do_create_project(
        agg,
        {
            "owner_org": f"org:{agg_org.pk}",
            "name": "小榄家庭屋顶光伏推广计划（第二期，60户）",
            "community": "yongning",
            "capacity_kwp": "360",
            "amount_cny": "1300000",
            "financing_type": "lease",
            "tilt_deg": "20",
            "azimuth_deg": "180",
            "self_consumption_percent": "40",
            "description": "由小榄低碳发展促进中心组织60户居民安装屋顶光伏，每户约6 kWp；以融资租赁方式解决居民首付，"
            "租金由发电收益支付，碳普惠减排量由中心打包申报。",
        },
    )
    svc.do_publish(agg, households)

    school = User.objects.get(username="school")
    draft = svc.do_create_project(
        school,
        {
            "name": "永宁中学体育馆屋顶光伏",
            "community": "yongning",
            "roof_area_m2": "1200",
            "amount_cny": "650000",
            "financing_type": "loan",
            "tilt_deg": "10",
            "azimuth_deg": "180",
            "self_consumption_percent": "90",
            "description": "体育馆平屋顶，白天教学用电为主。",
        },
    )
    assert draft.state == FinancingProject.State.DRAFT

    svc.do_express_interest(
        financier,
        park,
        {
            "amount_cny": "5000000",
            "message": "我司可提供合同能源管理模式的全额投资，节能收益分享，欢迎进一步沟通屋顶荷载和用电数据。",
            "terms": "EMC 20年，前8年按电费九折分享节省的电费，之后资产无偿移交。",
        },
    )
