"""Demo notices, documents and demonstration projects, written through the services like real use.

The texts summarise the town's 2018 implementation plan (榄府办〔2018〕49号), the Guangdong PV carbon-inclusion
methodology and the platform's application steps; the projects link the demo PV systems, so their outcomes are
computed from the demo year's metered data. Photos are drawn with Pillow (illustrations, not photographs).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

DEMO_ORDER = 60
EDITOR_USERNAME = "editor"


def _say(stdout: Any, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def _at(y: int, m: int, d: int, h: int = 9) -> datetime:
    return timezone.make_aware(datetime(y, m, d, h, 0), timezone.get_default_timezone())


PLAN_ZH = """各社区，各部门：

为落实“十三五”低碳发展规划，构建资源节约型、环境友好型社会，推动经济高质量发展，镇政府办公室于2018年10月10日印发《小榄镇低碳发展工作实施方案》（榄府办〔2018〕49号）。

方案的目标是确保完成市下达的单位GDP碳排放指标和能源消费总量等约束性目标，力争到2020年初步建成国家级低碳示范城镇。

方案从三个方面部署工作：推动产业发展低碳化（天然气和分布式光伏、智能制造示范生产线）；推动城镇建设低碳化（绿色建筑和节能改造、海绵城镇、低碳平台建设）；推动生活方式低碳化（近零碳排放社区、低碳宣传和教育）。

其中“低碳平台建设”要求打造低碳综合服务平台，以分布式光伏发电系统碳普惠核证减排量服务平台为切入点，开展核证减排量申报指引、交易撮合等工作，逐步建立集信息化、投融资、示范合作等功能的综合服务平台（责任部门：发改局）。

实施中如有问题，请径与镇发展和改革局联系。"""

PLAN_EN = """To all communities and departments:

To carry out the 13th Five-Year low-carbon development plan and build a resource-saving, environment-friendly society, the Town Government Office issued the Xiaolan Town Low-Carbon Development Implementation Plan (Lanfubanfa [2018] No. 49) on 10 October 2018.

The plan commits the town to the binding targets set by the city, CO2 per unit of GDP and total energy consumption, and aims to make Xiaolan a national low-carbon demonstration town by 2020.

It organises the work in three parts: low-carbon industry (natural gas and distributed PV, smart-manufacturing demonstration lines); low-carbon town building (green buildings and energy retrofits, sponge-town measures, a low-carbon platform); and low-carbon ways of life (near-zero-carbon communities, education and publicity).

Under "low-carbon platform" the town builds an integrated low-carbon service platform. Its entry point is a carbon-inclusion certified-emission-reduction service for distributed PV, offering application guidance and matching of buyers and sellers; step by step it adds information services, investment and financing, and demonstration cooperation (responsible: Development and Reform Bureau).

Questions on the implementation go to the Town Development and Reform Bureau."""

METHOD_ZH = """本文概要介绍平台所采用的《广东省安装分布式光伏发电系统碳普惠方法学》的计算方法，供光伏业主和服务机构参考。正式文本以广东省生态环境厅发布的版本为准。

适用范围：广东省内已并网的小型分布式光伏发电系统，申请人为企业、机构或居民家庭。

基准线：光伏发电替代的电网电量。减排量 ER = EG × EF_CM，其中 EG 为监测期内的光伏发电量（kWh），EF_CM 为南方区域电网组合边际排放因子。

排放因子：采用生态环境部发布的2019年度南方区域电网基准线排放因子，EF_OM = 0.8042、EF_BM = 0.2135 tCO2/MWh，太阳能项目权重 0.75/0.25，得 EF_CM = 0.6565 kgCO2/kWh。即每发电 1 MWh 约减排 0.66 吨二氧化碳当量。

监测：以供电部门的光伏发电计量表或双向电表结算数据为准，按自然月监测；平台保存每次计算所用的方法学版本和因子版本，因子更新不改变已计算的结果。

签发：核证减排量以整吨（tCO2e）签发，不足一吨的部分结转到下一次申请。"""

METHOD_EN = """A summary of how the platform applies the Guangdong methodology for carbon inclusion of distributed PV systems, for PV owners and service agencies. The official text published by the Guangdong Department of Ecology and Environment prevails.

Scope: small grid-connected distributed PV systems in Guangdong, owned by enterprises, institutions or households.

Baseline: grid electricity displaced by PV generation. Reductions ER = EG × EF_CM, where EG is the PV generation of the monitoring period (kWh) and EF_CM the combined-margin factor of the Southern regional grid.

Factor: the 2019 Southern grid baseline factors published by the Ministry of Ecology and Environment, EF_OM = 0.8042 and EF_BM = 0.2135 tCO2/MWh, weighted 0.75/0.25 for solar, give EF_CM = 0.6565 kgCO2/kWh: about 0.66 tCO2e avoided per MWh generated.

Monitoring: the grid company's PV generation meter or the settled data of a bidirectional meter, by calendar month. The platform keeps the methodology and factor version of every result, so a new factor edition never changes results already computed.

Issuance: certified units are whole tonnes (tCO2e); the remainder below one tonne is carried forward to the next application."""

GUIDE_ZH = """本指引说明如何通过平台申请光伏碳普惠核证减排量（PHCER）。

一、登记光伏系统：填写地址、所在社区、装机容量、并网日期和计量方式，上传并网验收单等证明材料。居民家庭可授权服务机构（如小榄低碳发展促进中心）代为管理和打包申报。

二、上报发电数据：通过文件上传、接口或数据网关报送电表读数。平台逐条检查，不合格的数据会注明原因，不会被悄悄丢弃。

三、核算减排量：平台按自然月根据方法学计算减排量，并与晴空发电上限比对，异常月份需审核人员复核后方可计入。

四、提交申请：选择监测期和系统，签署“不重复申报承诺”，上传或由平台生成核证报告。

五、审核与签发：市生态环境局初审、核证后批准，核证减排量以整吨签发到申请人的登记账户，可用于抵消或交易。

详细的逐项检查清单请见平台“申报指引”页面。"""

GUIDE_EN = """This guide explains how to apply for PV carbon-inclusion certified emission reductions (PHCER) on the platform.

1. Register the PV system: address, community, capacity, grid-connection date and metering arrangement, with the grid-connection acceptance record as evidence. Households may give a service agency (such as the Xiaolan Low-Carbon Development Promotion Centre) consent to manage their systems and file bundled applications.

2. Send the generation data: upload meter readings as a file, through the API or a data gateway. Every row is checked; rejected rows are listed with their reason, never silently dropped.

3. Quantification: the platform computes the avoided emissions by calendar month under the methodology and compares each month with the clear-sky bound; an implausible month counts only after a reviewer clears it.

4. Apply: choose the monitoring period and the systems, sign the no-double-claim commitment and attach the verification report, or let the platform draft it.

5. Review and issuance: after the city bureau's preliminary review and verification, the application is approved and whole tonnes are issued into the applicant's registry account, for offsetting or sale.

The item-by-item checklist is on the platform's Application guidance page."""

TEMPLATE_ZH = """电表读数批量上传使用的 CSV 模板，每行一条读数：

meter_serial：电表编号（与登记时一致）；timestamp：读数时间（区间结束时刻，带时区，如 2025-06-01T12:00:00+08:00）；interval_minutes：区间长度（分钟）；energy：区间发电量；export：区间上网电量（双向电表填写，可空）；unit：kWh 或 MWh。

累计读数的电表可改用 cumulative 列填写表底数，平台自动计算差值。文件编码为 UTF-8。"""

TEMPLATE_EN = """The CSV template for uploading meter readings in bulk, one reading per row:

meter_serial: the meter number as registered; timestamp: end of the interval, with its time zone (e.g. 2025-06-01T12:00:00+08:00); interval_minutes: length of the interval; energy: generation over the interval; export: energy fed to the grid (bidirectional meters, may be empty); unit: kWh or MWh.

Meters with a cumulative register may fill a cumulative column with the register reading instead; the platform derives the differences. Files are UTF-8."""

TEMPLATE_CSV = (
    "meter_serial,timestamp,interval_minutes,energy,export,unit\n"
    "GD-XL-00240017,2025-06-01T09:00:00+08:00,60,1.850,0.920,kWh\n"
    "GD-XL-00240017,2025-06-01T10:00:00+08:00,60,2.730,1.410,kWh\n"
    "GD-XL-00240017,2025-06-01T11:00:00+08:00,60,3.310,1.760,kWh\n"
)

NEWS_2018_ZH = """2018年8月，经第三方核证，广东省发展改革委对小榄镇四个分布式光伏碳普惠项目予以备案：史丹利（中山）工具有限公司、达能（中国）食品饮料有限公司、中山市小榄低碳发展促进中心，以及中山市麦润标等10户居民家庭。

其中10户居民家庭的项目以打包方式申报，合计减排量51吨二氧化碳当量，是全省首个打包申报的居民家庭光伏项目。单户申报成本过高，由服务机构打包申报，是本平台服务居民家庭的核心方式。"""

TRAINING_ZH = """镇发展和改革局将举办光伏碳普惠申报培训，面向各社区工作人员、光伏安装企业和服务机构，内容包括平台登记、数据上报、减排量核算和申报流程。具体时间和报名方式另行通知。"""
TRAINING_EN = """The Town Development and Reform Bureau will hold a training on PV carbon-inclusion applications for community staff, PV installers and service agencies: registration on the platform, sending readings, quantification and the application steps. Dates and registration will follow."""

COMMUNITY_DRAFT_ZH = """（征求意见稿）为推进近零碳排放社区示范工程创建，结合中山碳普惠制的实施，选取家庭光伏、有机种植、餐厨堆肥、雨水回收、绿色出行等居民参与基础广泛的低碳行为，探索开发社区碳普惠方法学。

目前仅家庭光伏有省级方法学并可申请核证减排量；其他行为的量化方法尚在研究，暂不计入核证减排量。"""


SCHOOL_ZH = """永宁中学教学楼屋顶96 kWp分布式光伏于2021年6月并网，是小榄镇首个面向中小学生的光伏科普示范点。

学校把光伏发电数据接入低碳综合服务平台，按月显示发电量和减排量，用于物理、地理课的低碳教学和“低碳班级”评比。欢迎兄弟学校和镇街参观交流，了解学校屋顶光伏的建设、运维和碳普惠申报经验。"""
SCHOOL_EN = """The 96 kWp rooftop PV system on Yongning Middle School's teaching building was connected to the grid in June 2021. It is Xiaolan's first PV showcase for school students.

The school feeds its generation data into the low-carbon integrated service platform, which shows generation and avoided emissions month by month; teachers use them in physics and geography lessons and in the low-carbon class competition. Other schools and towns are welcome to visit and learn about building, running and crediting a school roof PV system."""

COMMUNITY_ZH = """永宁社区是小榄镇近零碳排放社区示范创建点。社区以家庭屋顶光伏为切入点，居民授权小榄低碳发展促进中心统一管理光伏数据并打包申报碳普惠核证减排量，降低单户申报成本。

社区同时推广有机种植、餐厨堆肥、雨水回收和绿色出行等低碳行为。这些行为目前尚无省级方法学，平台只展示家庭光伏经计量和核算的成果。"""
COMMUNITY_EN = """Yongning is Xiaolan's near-zero-carbon demonstration community. It starts from household rooftop PV: residents give the Xiaolan Low-Carbon Development Promotion Centre consent to manage their PV data and file bundled carbon-inclusion applications, which keeps the cost per household low.

The community also promotes organic planting, kitchen-waste composting, rainwater recovery and green travel. These have no provincial methodology yet, so the platform shows only the metered and quantified results of household PV."""

FACTORY_ZH = """榄菊电子电器园区在电子电器生产线实施智能化和自动化改造（“机器换人”），并在厂房屋顶建设820 kWp分布式光伏，所发电量主要供生产线自用，余电上网。

项目是小榄镇智能制造示范镇建设的示范生产线之一，可为五金塑料、电子电器、LED照明等行业企业提供改造和屋顶光伏建设的参考。"""
FACTORY_EN = """The Lanju electronics and appliances park automated its production lines ("robots replacing manual work") and built an 820 kWp rooftop PV system; the lines use most of its output and the rest is fed to the grid.

It is one of the demonstration lines of Xiaolan's smart-manufacturing town programme and a reference for hardware and plastics, electronics and LED-lighting companies planning retrofits and rooftop PV."""

BUNDLE_ZH = """2018年，中山市小榄低碳发展促进中心将麦润标等10户居民家庭的屋顶光伏打包，经第三方核证后获广东省发展改革委备案，合计减排量51吨二氧化碳当量，是全省首个打包申报的居民家庭光伏碳普惠项目。

打包申报解决了单户申报成本过高的问题，本平台的服务机构打包申报功能即以此为原型。"""
BUNDLE_EN = """In 2018 the Xiaolan Low-Carbon Development Promotion Centre bundled the rooftop PV of ten households (Mai Runbiao and nine others). After third-party verification the Guangdong Development and Reform Commission filed the bundle with 51 tCO2e of reductions: the province's first bundled household PV carbon-inclusion project.

Bundling answers the problem that one household's application costs too much; the platform's bundled applications by service agencies follow this model."""


def _draw_roof(title_colour: tuple[int, int, int], seed: int) -> bytes:
    """An illustration of a building with PV panels on the roof (PNG)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (960, 600), (200, 226, 245))
    d = ImageDraw.Draw(img)
    d.ellipse((780, 50, 880, 150), fill=(255, 214, 102))
    d.rectangle((0, 470, 960, 600), fill=(120, 170, 110))
    d.rectangle((140, 250, 820, 500), fill=title_colour)
    for row in range(4):
        for col in range(8):
            x, y = 180 + col * 78, 300 + row * 48
            d.rectangle((x, y, x + 40, y + 30), fill=(235, 240, 245))
    # the PV array on the roof, tilted panels drawn as parallelograms
    for row in range(2):
        for col in range(9):
            x0 = 150 + col * 74 + (seed % 3) * 2
            y0 = 190 + row * 30
            d.polygon(
                [(x0, y0 + 26), (x0 + 64, y0 + 26), (x0 + 70, y0), (x0 + 6, y0)],
                fill=(30, 60, 120),
                outline=(200, 210, 230),
            )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def load_demo_part(stdout: Any = None) -> None:
    from lowcarbon.accounts.models import Membership, Organisation, Role, RoleGrant, User
    from lowcarbon.demo import DEMO_PASSWORD
    from lowcarbon.info import services as svc
    from lowcarbon.info.models import Article
    from lowcarbon.pv.models import PVSystem

    _say(stdout, "Information service: notices, documents and demonstration projects …")
    town = Organisation.objects.filter(name="小榄镇发展和改革局").first()
    editor = User.objects.create_user(
        username=EDITOR_USERNAME, password=DEMO_PASSWORD, real_name="苏静怡", phone="13800000021"
    )
    RoleGrant.objects.create(user=editor, role=Role.CONTENT_EDITOR, organisation=town)
    if town is not None:
        Membership.objects.create(user=editor, organisation=town, level=Membership.Level.MEMBER)

    def publish(
        data: dict[str, str], when: datetime | None, attachments: tuple[tuple[str, bytes], ...] = ()
    ) -> Article:
        article = svc.do_save_article(editor, data)
        for name, blob in attachments:
            svc.do_add_attachment(editor, article, SimpleUploadedFile(name, blob))
        if when is not None:
            article = svc.do_publish_article(editor, article, when)
        return article

    publish(
        {
            "category": "policy",
            "title_zh": "关于印发《小榄镇低碳发展工作实施方案》的通知（榄府办〔2018〕49号）",
            "title_en": "Notice on the Xiaolan Town Low-Carbon Development Implementation Plan (Lanfubanfa [2018] No. 49)",
            "body_zh": PLAN_ZH,
            "body_en": PLAN_EN,
        },
        _at(2018, 10, 10),
    )
    publish(
        {
            "category": "news",
            "title_zh": "小榄镇四个光伏碳普惠项目获省发展改革委备案",
            "body_zh": NEWS_2018_ZH,
        },
        _at(2018, 8, 30),
    )
    publish(
        {
            "category": "methodology",
            "title_zh": "广东省分布式光伏碳普惠方法学要点（平台计算说明）",
            "title_en": "Guangdong PV carbon-inclusion methodology: key points as applied by the platform",
            "body_zh": METHOD_ZH,
            "body_en": METHOD_EN,
        },
        _at(2025, 3, 1),
    )
    publish(
        {
            "category": "guidance",
            "title_zh": "光伏碳普惠核证减排量（PHCER）申报指引",
            "title_en": "How to apply for PV carbon-inclusion certified emission reductions (PHCER)",
            "body_zh": GUIDE_ZH,
            "body_en": GUIDE_EN,
        },
        _at(2025, 3, 15),
    )
    publish(
        {
            "category": "template",
            "title_zh": "电表读数上传模板（CSV）",
            "title_en": "Meter readings upload template (CSV)",
            "body_zh": TEMPLATE_ZH,
            "body_en": TEMPLATE_EN,
        },
        _at(2025, 4, 1),
        (("readings-template.csv", TEMPLATE_CSV.encode()),),
    )
    publish(
        {
            "category": "news",
            "title_zh": "光伏碳普惠申报培训预告",
            "title_en": "Coming: training on PV carbon-inclusion applications",
            "body_zh": TRAINING_ZH,
            "body_en": TRAINING_EN,
        },
        timezone.now() + timedelta(days=14),  # scheduled: not public yet
    )
    publish(
        {
            "category": "guidance",
            "title_zh": "近零碳排放社区创建指引（征求意见稿）",
            "body_zh": COMMUNITY_DRAFT_ZH,
        },
        None,  # a draft
    )

    orgs = {o.name: o for o in Organisation.objects.all()}
    school = orgs.get("小榄镇永宁中学")
    agg = orgs.get("中山市小榄低碳发展促进中心")
    ent2 = orgs.get("中山市榄菊电子电器有限公司")

    def project(data: dict[str, Any], published: bool = True) -> Any:
        p = svc.do_save_project(editor, data)
        if published:
            p = svc.do_set_project_published(editor, p, True)
        return p

    made = []
    if school is not None:
        school_systems = list(PVSystem.objects.filter(owner_org=school).values_list("code", flat=True))
        p = project(
            {
                "kind": "pv_showcase",
                "name_zh": "永宁中学屋顶光伏科普示范点",
                "name_en": "Yongning Middle School rooftop PV showcase",
                "description_zh": SCHOOL_ZH,
                "description_en": SCHOOL_EN,
                "community": "yongning",
                "location": "小榄镇永宁社区 永宁中学教学楼",
                "owner_org": str(school.pk),
                "owner_user": "school",
                "contact_name": "周慧玲",
                "contact_phone": "0760-2211 0014",
                "started_on": "2021-06-30",
                "pv_systems": school_systems,
            }
        )
        svc.do_add_photo(
            editor,
            p,
            SimpleUploadedFile("school-roof.png", _draw_roof((214, 196, 170), 1)),
            {
                "caption_zh": "教学楼屋顶光伏阵列（示意图）",
                "caption_en": "The PV array on the teaching building (illustration)",
            },
        )
        made.append(p)
    if agg is not None:
        community_systems = list(
            PVSystem.objects.filter(community__code="yongning", owner_type="household").values_list(
                "code", flat=True
            )
        )
        made.append(
            project(
                {
                    "kind": "near_zero_community",
                    "name_zh": "永宁社区近零碳排放示范社区",
                    "name_en": "Yongning near-zero-carbon demonstration community",
                    "description_zh": COMMUNITY_ZH,
                    "description_en": COMMUNITY_EN,
                    "community": "yongning",
                    "location": "小榄镇永宁社区",
                    "owner_org": str(agg.pk),
                    "owner_user": "aggregator",
                    "contact_name": "黎晓敏",
                    "contact_phone": "0760-2211 0005",
                    "started_on": "2022-01-01",
                    "pv_systems": community_systems,
                }
            )
        )
        bundle = project(
            {
                "kind": "pv_showcase",
                "name_zh": "居民家庭光伏打包申报（2018年全省首例）",
                "name_en": "Bundled household PV application (Guangdong's first, 2018)",
                "description_zh": BUNDLE_ZH,
                "description_en": BUNDLE_EN,
                "location": "小榄镇",
                "owner_org": str(agg.pk),
                "owner_user": "aggregator",
                "contact_name": "黎晓敏",
                "contact_phone": "0760-2211 0005",
                "started_on": "2018-08-01",
            }
        )
        svc.do_add_outcome(
            editor,
            bundle,
            {
                "indicator_zh": "核证减排量（10户合计）",
                "indicator_en": "Certified reductions (10 households in total)",
                "value": "51",
                "unit": "tCO2e",
                "period": "2018",
                "source": "http://www.yxmaochang.cn/category/201808/30/48991.html",
            },
        )
        svc.do_add_outcome(
            editor,
            bundle,
            {
                "indicator_zh": "参与家庭",
                "indicator_en": "Households",
                "value": "10",
                "unit": "户 / households",
                "period": "2018",
                "source": "http://www.yxmaochang.cn/category/201808/30/48991.html",
            },
        )
        made.append(bundle)
    if ent2 is not None:
        p = project(
            {
                "kind": "smart_manufacturing",
                "name_zh": "榄菊电子电器智能制造示范生产线与园区光伏",
                "name_en": "Lanju smart-manufacturing line and park PV",
                "description_zh": FACTORY_ZH,
                "description_en": FACTORY_EN,
                "community": "xinshi",
                "location": "小榄镇新市社区 榄菊电子电器园区",
                "owner_org": str(ent2.pk),
                "owner_user": "enterprise2",
                "contact_name": "何嘉欣",
                "contact_phone": "0760-2211 0012",
                "started_on": "2021-06-30",
                "pv_systems": list(PVSystem.objects.filter(owner_org=ent2).values_list("code", flat=True)),
            }
        )
        svc.do_add_photo(
            editor,
            p,
            SimpleUploadedFile("factory-roof.png", _draw_roof((180, 186, 196), 2)),
            {
                "caption_zh": "厂房屋顶光伏（示意图）",
                "caption_en": "Rooftop PV on the factory (illustration)",
            },
        )
        made.append(p)
    if town is not None:
        project(
            {
                "kind": "green_building",
                "name_zh": "镇政府办公楼节能改造（筹备中）",
                "name_en": "Town government office building energy retrofit (in preparation)",
                "description_zh": "按照方案“绿色建筑和节能改造”的要求，对镇政府办公楼开展节能诊断和改造，改造后接入大型公共建筑用能监测平台。",
                "owner_org": str(town.pk),
            },
            published=False,
        )
    if made:
        svc.do_send_request(
            made[0],
            {
                "name": "黄志远",
                "organisation": "中山市古镇镇教育事务指导中心",
                "contact": "0760-2233 4455",
                "message": "我们计划组织镇内中学的物理老师参观贵校的屋顶光伏，并交流光伏数据在低碳教学中的用法，希望安排在下月中旬的一个下午，约15人。",
            },
            sender_ip=None,
            language="zh-hans",
        )
    _say(
        stdout, f"  {Article.objects.count()} notices and documents, {len(made) + 1} demonstration projects."
    )
