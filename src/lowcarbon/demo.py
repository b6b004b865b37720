"""The Xiaolan demo: real community names, ten households, three enterprises, a school, an aggregator, reviewers,
a verifier, a buyer and an administrator, and a year of hourly readings generated from a physical model (pvlib
clear sky × a daily clearness drawn from monthly weather statistics) — all loaded through the platform's own
services, so the demo exercises the same paths as real use. Demo systems are flagged `is_demo`.

Every person's password is DEMO_PASSWORD. The data is deterministic (fixed random seed).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

DEMO_PASSWORD = "xiaolan-demo-2025"
DEMO_YEAR = 2025
DEMO_MARK = "demo-loaded"
#: Local days of the demo year that household01's gateway feed misses: the aggregator uploads them from the
#: gateway's export file (with one row of each common fault), so the demo shows an upload, its quarantine and the
#: gap the refused rows leave, all inside the demo year.
GATEWAY_FILE_DAYS = (date(DEMO_YEAR, 1, 5), date(DEMO_YEAR, 1, 6))

#: Mean daily clearness (metered / clear-sky) by month for Zhongshan: overcast Feb–Apr, rainy early summer,
#: clearer autumn; the annual mean ≈ 0.58 ≈ 1,050 / 1,818 kWh/kWp (domain.md §4.1, §4.4). Demo assumption.
MONTHLY_CLEARNESS = [0.62, 0.45, 0.40, 0.45, 0.52, 0.55, 0.66, 0.62, 0.64, 0.70, 0.68, 0.64]

ORGS = [
    # key, kind, name, name_en, credit code
    (
        "agg",
        "aggregator",
        "中山市小榄低碳发展促进中心",
        "Xiaolan Low-Carbon Development Promotion Centre",
        "52442000MJL000001X",
    ),
    (
        "city",
        "authority",
        "中山市生态环境局",
        "Zhongshan Ecology and Environment Bureau",
        "11442000MB2C00001Y",
    ),
    (
        "town",
        "authority",
        "小榄镇发展和改革局",
        "Xiaolan Town Development and Reform Bureau",
        "11442000MB2C00002Y",
    ),
    (
        "verifier",
        "verifier",
        "广东绿碳核证服务有限公司",
        "Guangdong Green Carbon Verification Co., Ltd.",
        "91440101MA5D000010",
    ),
    (
        "ent1",
        "enterprise",
        "中山市小榄五金制品有限公司",
        "Xiaolan Hardware Products Co., Ltd.",
        "91442000MA4U000011",
    ),
    (
        "ent2",
        "enterprise",
        "中山市榄菊电子电器有限公司",
        "Lanju Electronics and Appliances Co., Ltd.",
        "91442000MA4U000012",
    ),
    (
        "ent3",
        "enterprise",
        "中山市小榄纺织服装有限公司",
        "Xiaolan Textile and Garment Co., Ltd.",
        "91442000MA4U000013",
    ),
    ("school", "institution", "小榄镇永宁中学", "Yongning Middle School, Xiaolan", "12442000MB2C00003Z"),
    (
        "buyer",
        "enterprise",
        "中山市绿源食品饮料有限公司",
        "Lvyuan Food and Beverage Co., Ltd.",
        "91442000MA4U000014",
    ),
]

# username, real name, phone, roles, organisation key, label (shown at start-up)
PEOPLE = [
    (
        "admin",
        "管理员 邓建国",
        "13800000001",
        ["registry_admin"],
        None,
        "registry administrator (back office)",
    ),
    (
        "reviewer",
        "陈志强",
        "13800000002",
        ["reviewer_city"],
        "city",
        "reviewer, Zhongshan ecology-environment bureau",
    ),
    (
        "reviewer2",
        "林晓峰",
        "13800000003",
        ["reviewer_town"],
        "town",
        "reviewer, Xiaolan development & reform bureau",
    ),
    ("verifier", "郑雅文", "13800000004", ["verifier"], "verifier", _("verifier")),
    (
        "aggregator",
        "黎晓敏",
        "13800000005",
        ["aggregator"],
        "agg",
        _("aggregator (Xiaolan low-carbon centre)"),
    ),
    ("enterprise1", "梁志华", "13800000011", ["owner_enterprise"], "ent1", _("enterprise owner (hardware)")),
    (
        "enterprise2",
        "何嘉欣",
        "13800000012",
        ["owner_enterprise"],
        "ent2",
        _("enterprise owner (electronics)"),
    ),
    ("enterprise3", "吴国栋", "13800000013", ["owner_enterprise"], "ent3", _("enterprise owner (textiles)")),
    ("school", "周慧玲", "13800000014", ["owner_institution"], "school", _("school (institution owner)")),
    ("buyer", "冯俊杰", "13800000015", ["buyer"], "buyer", _("buyer")),
]

# households: username, real name, phone, community, kWp, tilt, azimuth, metering, consents to aggregator
HOUSEHOLDS = [
    ("household01", "何伟文", "13900000001", "yongning", "6.5", "20", "180", "bidirectional", True),
    ("household02", "梁淑贞", "13900000002", "dongqu", "5.0", "15", "170", "generation_meter", True),
    ("household03", "李国强", "13900000003", "beiqu", "8.0", "22", "190", "bidirectional", True),
    ("household04", "黄美玲", "13900000004", "xiqu", "4.2", "10", "160", "generation_meter", True),
    ("household05", "陈永康", "13900000005", "nanqu", "7.2", "25", "180", "bidirectional", True),
    ("household06", "吴秀英", "13900000006", "jixi", "3.6", "18", "200", "generation_meter", True),
    ("household07", "罗志明", "13900000007", "shakou", "9.6", "20", "180", "bidirectional", True),
    ("household08", "冯丽华", "13900000008", "baofeng", "5.4", "12", "150", "generation_meter", True),
    ("household09", "甘建华", "13900000009", "lianfeng", "6.0", "20", "210", "bidirectional", True),
    ("household10", "周婉婷", "13900000010", "zhuyuan", "4.8", "22", "180", "generation_meter", True),
]

# organisation systems: org key, actor username, name, community, kWp, tilt, azimuth, metering, cumulative register
ORG_SYSTEMS = [
    ("ent1", "enterprise1", "五金厂房屋顶光伏", "dongqu", "480", "10", "180", "bidirectional", True),
    ("ent2", "enterprise2", "电子电器园区光伏", "xinshi", "820", "8", "165", "bidirectional", True),
    ("ent3", "enterprise3", "纺织车间屋顶光伏", "shengfeng", "260", "12", "195", "generation_meter", False),
    ("school", "school", "永宁中学教学楼光伏", "yongning", "96", "15", "180", "generation_meter", False),
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def fake_id_number(seq: int, born: date) -> str:
    """A well-formed (checksummed) but fictitious Zhongshan ID-card number (area code 442000)."""
    body = f"442000{born:%Y%m%d}{seq % 1000:03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]
    return body + check


#: log-ins that the apps' demo parts create (see demo_parts())
PART_LOGINS = [
    ("financier", _("financier (green leasing company)")),
    ("editor", _("content editor (notices and documents)")),
]


def demo_logins() -> list[tuple[str, str]]:
    return (
        [(u, str(label)) for u, _n, _p, _r, _o, label in PEOPLE]
        + [(u, str(label)) for u, label in PART_LOGINS]
        + [
            (HOUSEHOLDS[0][0], str(_("household PV owner (何伟文, 永宁社区)"))),
            ("household02 … household10", str(_("more household owners"))),
        ]
    )


def is_loaded() -> bool:
    from lowcarbon.accounts.models import User

    return User.objects.filter(username="aggregator").exists()


def ensure_demo(stdout: Any = None) -> bool:
    """Load the demo once; returns True if it was loaded now."""
    if is_loaded():
        return False
    load_demo(stdout=stdout)
    return True


def _say(stdout: Any, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def load_demo(stdout: Any = None) -> None:
    from lowcarbon.accounts.models import Membership, Organisation, RoleGrant, User
    from lowcarbon.pv.models import PVSystem
    from lowcarbon.pv.services import do_grant_consent, do_register_system

    rng = random.Random(20181010)  # the day the town's plan was issued
    _say(stdout, "Loading the Xiaolan demo: people and organisations …")
    with transaction.atomic():
        orgs = {}
        for key, kind, name, name_en, code in ORGS:
            orgs[key] = Organisation.objects.create(
                name=name, name_en=name_en, kind=kind, credit_code=code, address="中山市小榄镇"
            )
        users = {}
        seq = 100
        for username, real_name, phone, roles, org_key, _label in PEOPLE + [
            (h[0], h[1], h[2], ["owner_household"], None, "") for h in HOUSEHOLDS
        ]:
            seq += 1
            u = User.objects.create_user(
                username=username, password=DEMO_PASSWORD, real_name=real_name, phone=phone
            )
            u.set_id_number(fake_id_number(seq, date(1960 + seq % 35, 1 + seq % 12, 1 + seq % 27)))
            if username == "admin":
                u.is_staff = u.is_superuser = True
            u.save()
            org = orgs.get(org_key) if org_key else None
            for role in roles:
                RoleGrant.objects.create(user=u, role=role, organisation=org)
            if org is not None:
                Membership.objects.create(user=u, organisation=org, level=Membership.Level.ADMIN)
            users[username] = u

    _say(stdout, "Registering PV systems …")
    systems: list[tuple[PVSystem, bool, int]] = []  # system, cumulative register, household index or -1
    serial = 0
    for i, (username, _name, _phone, community, kwp, tilt, az, metering, consent) in enumerate(HOUSEHOLDS):
        serial += 1
        lat, lon = _jitter(rng, community)
        s = do_register_system(
            {
                "owner_kind": "self",
                "name": f"{HOUSEHOLDS[i][1]}家屋顶光伏",
                "address": f"中山市小榄镇{_street(rng)}",
                "community": community,
                "latitude": lat,
                "longitude": lon,
                "capacity_kwp": kwp,
                "tilt_deg": tilt,
                "azimuth_deg": az,
                "grid_connection_date": date(2022 + i % 3, 1 + (i * 5) % 12, 10 + i),
                "metering": metering,
                "meter_serial": f"GD-XL-{240000 + serial * 17:08d}",
                "installer": "中山市阳光能源安装有限公司",
            },
            actor=users[username],
        )
        if consent:
            do_grant_consent(
                s,
                aggregator=orgs["agg"],
                document=f"小榄低碳中心授权书 2024-{i + 1:03d}",
                actor=users[username],
            )
        systems.append((s, False, i))
    for org_key, username, name, community, kwp, tilt, az, metering, cumulative in ORG_SYSTEMS:
        serial += 1
        lat, lon = _jitter(rng, community)
        s = do_register_system(
            {
                "owner_kind": "organisation",
                "owner_org": orgs[org_key].pk,
                "name": name,
                "address": f"中山市小榄镇{_street(rng)}",
                "community": community,
                "latitude": lat,
                "longitude": lon,
                "capacity_kwp": kwp,
                "tilt_deg": tilt,
                "azimuth_deg": az,
                "grid_connection_date": date(2021, 6, 30),
                "metering": metering,
                "meter_serial": f"GD-XL-{240000 + serial * 17:08d}",
                "installer": "广东粤能光伏工程有限公司",
            },
            actor=users[username],
        )
        systems.append((s, cumulative, -1))
    PVSystem.objects.filter(pk__in=[s.pk for s, _c, _i in systems]).update(is_demo=True)

    _say(stdout, f"Generating and ingesting a year ({DEMO_YEAR}) of hourly readings …")
    held_back = _ingest_year(systems, rng)
    _say(stdout, "Uploading the aggregator's file with a few bad rows …")
    _aggregator_file_with_bad_rows(systems[0][0], users["aggregator"], held_back)
    for load_part in demo_parts():
        load_part(stdout)
    _say(stdout, "Demo loaded.")


def demo_parts() -> list[Any]:
    """Each app may add its own demo data: a module `<app>.demo` with `load_demo_part(stdout)` and an optional
    `DEMO_ORDER` (lower first; default 100). They run after the people, systems and readings above exist."""
    from importlib import import_module
    from importlib.util import find_spec

    from django.apps import apps

    found = []
    for config in apps.get_app_configs():
        if not config.name.startswith("lowcarbon.") or find_spec(f"{config.name}.demo") is None:
            continue
        module = import_module(f"{config.name}.demo")
        if hasattr(module, "load_demo_part"):
            found.append((getattr(module, "DEMO_ORDER", 100), config.name, module.load_demo_part))
    return [fn for _order, _name, fn in sorted(found, key=lambda t: (t[0], t[1]))]


_STREETS = [
    "新市路",
    "民安路",
    "东生路",
    "升平路",
    "宝丰路",
    "绩西路",
    "永宁大道",
    "九洲基路",
    "联丰路",
    "沙口路",
]


def _street(rng: random.Random) -> str:
    return f"{rng.choice(_STREETS)}{rng.randint(1, 180)}号"


def _jitter(rng: random.Random, community: str) -> tuple[str, str]:
    from lowcarbon.pv.models import Community

    c = Community.objects.get(code=community)
    lat = Decimal(c.latitude) + Decimal(rng.randint(-40, 40)) / 10000
    lon = Decimal(c.longitude) + Decimal(rng.randint(-40, 40)) / 10000
    return str(lat.quantize(Decimal("0.00001"))), str(lon.quantize(Decimal("0.00001")))


def hourly_generation(system: Any, year: int, rng: random.Random) -> list[tuple[datetime, float]]:
    """(end of hour UTC, kWh) for every hour of the year: clear-sky AC × daily clearness × hourly noise."""
    from lowcarbon.core.params import param_value
    from lowcarbon.pv.domain.physics import hourly_clear_sky_ac_per_kwp

    starts, ac = hourly_clear_sky_ac_per_kwp(
        system.latitude,
        system.longitude,
        system.tilt_deg,
        system.azimuth_deg,
        year,
        param_value("pv.performance_ratio_clear_sky"),
    )
    kwp = float(system.capacity_kwp)
    out: list[tuple[datetime, float]] = []
    day_k = 0.0
    current_day = None
    for start, p in zip(starts, ac, strict=True):
        if start.date() != current_day:
            current_day = start.date()
            mean = MONTHLY_CLEARNESS[start.month - 1]
            a = 4.0
            day_k = rng.betavariate(a * mean / (1 - mean), a) if mean < 1 else 1.0
        k = min(1.0, max(0.0, day_k * rng.uniform(0.85, 1.15)))
        out.append(((start + timedelta(hours=1)).astimezone(UTC), round(float(p) * kwp * k, 3)))
    return out


def _ingest_year(
    systems: list[tuple[Any, bool, int]], rng: random.Random
) -> list[tuple[datetime, dict[str, str | None]]]:
    """Ingest the demo year's hourly readings of every system; returns the readings of household01 on the
    GATEWAY_FILE_DAYS (end of hour UTC, fields), which its gateway's feed misses (see
    _aggregator_file_with_bad_rows)."""
    from lowcarbon.metering.domain.validate import RawRow
    from lowcarbon.metering.models import Meter
    from lowcarbon.metering.services import do_ingest

    held_back: list[tuple[datetime, dict[str, str | None]]] = []

    def rows():  # type: ignore[no-untyped-def]
        n = 0
        for system, cumulative, household in systems:
            meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
            bidirectional = system.metering == "bidirectional"
            register = 1000.0 + rng.randint(0, 5000)
            export_share = rng.uniform(0.35, 0.7)
            for ts, kwh in hourly_generation(system, DEMO_YEAR, rng):
                local = ts + timedelta(hours=8)
                if household == 2 and local.month == 7 and 10 <= local.hour <= 17:
                    # a stuck gateway in July repeats the nameplate output all day: each hour passes the hourly
                    # ceiling, the month fails the monthly bands and the clear-sky bound (a plausibility flag)
                    kwh = float(system.capacity_kwp)
                n += 1
                fields: dict[str, str | None] = {
                    "meter_serial": meter.serial,
                    "timestamp": ts.isoformat(),
                    "unit": "kWh",
                    "interval_minutes": "60",
                }
                if cumulative:
                    register += kwh
                    fields["cumulative"] = f"{register:.3f}"
                else:
                    fields["energy"] = f"{kwh:.3f}"
                if bidirectional:
                    fields["export"] = f"{kwh * export_share:.3f}"
                if household == 0 and (local - timedelta(hours=1)).date() in GATEWAY_FILE_DAYS:
                    held_back.append((ts, fields))  # the hour starts on a day the feed misses
                    continue
                yield RawRow(n, fields, ",".join(str(v) for v in fields.values()))

    do_ingest(rows(), source="demo", filename=f"demo-{DEMO_YEAR}.csv")
    return held_back


def _aggregator_file_with_bad_rows(
    system: Any, aggregator_user: Any, held_back: list[tuple[datetime, dict[str, str | None]]]
) -> None:
    """The aggregator uploads household01's gateway export of the GATEWAY_FILE_DAYS (the hours its feed missed)
    with one row of each common fault: the good rows are stored, the faulty ones quarantined, and the two hours
    whose rows are refused stay a gap (flagged, never filled)."""
    import io

    from django.utils import timezone

    from lowcarbon.metering.models import Meter
    from lowcarbon.metering.parsers import iter_csv
    from lowcarbon.metering.services import do_ingest

    serial = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk).serial
    shanghai = timezone.get_fixed_timezone(8 * 60)
    day, next_day = (d.isoformat() for d in GATEWAY_FILE_DAYS)
    faulty = {f"{next_day}T12:00:00+08:00", f"{next_day}T13:00:00+08:00"}  # their rows come below, faulty
    lines = ["meter_serial,timestamp,interval_minutes,energy,export,unit"]
    for ts, fields in held_back:
        when = ts.astimezone(shanghai).isoformat()
        if when not in faulty:
            lines.append(f"{serial},{when},60,{fields['energy']},{fields.get('export') or 0},kWh")
    lines += [
        f"{serial},{day}T12:00:00+08:00,60,9.999,0,kWh",  # conflicting duplicate
        f"GD-XL-99999999,{day}T12:00:00+08:00,60,1.2,0,kWh",  # unknown meter
        f"{serial},{timezone.localdate().year + 2}-01-01T12:00:00+08:00,60,1.2,0,kWh",  # future
        f"{serial},{day}T24:30:00+08:00,60,1.2,0,kWh",  # unparseable time
        f"{serial},2019-03-01T12:00:00+08:00,60,1.2,0,kWh",  # before grid connection
        f"{serial},{day}T23:59:00+08:00,60,-0.4,0,kWh",  # negative
        f"{serial},{next_day}T12:00:00+08:00,60,42.0,0,kWh",  # above physical ceiling
        f"{serial},{next_day}T13:00:00+08:00,60,2.0,3.1,kWh",  # export > generation
        f"{serial},{next_day}T14:00:00+08:00,60,2.0,0,",  # missing unit
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    do_ingest(
        iter_csv(io.BytesIO(data)),
        source="upload",
        filename=f"网关导出-{DEMO_YEAR}年1月.csv",
        user=aggregator_user,
    )
