"""Methodology records and grid-factor editions with their sources (domain reference §2.1, §2.4, §8.3)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

METHODOLOGIES = [
    (
        "GD-PV-2017-V01",
        "广东省安装分布式光伏发电系统碳普惠方法学（2017 V01）",
        "Guangdong carbon-inclusion methodology for installing distributed PV systems (2017, V01)",
        "V01",
        date(2017, 6, 23),
        date(2022, 7, 31),
        "Filed by Guangdong DRC 2017-06-23 (provincial methodologies, 2nd batch); built on CM-001/ACM0002 and "
        "CMS-002/AMS-I.D. domain reference §2.1 [C]. End date = start of the 2022 revision [M].",
    ),
    (
        "GD-PV-2022",
        "广东省安装分布式光伏发电系统碳普惠方法学（2022年修订版）",
        "Guangdong carbon-inclusion methodology for installing distributed PV systems (2022 revision)",
        "2022",
        date(2022, 8, 1),
        None,
        "Published by the Guangdong Department of Ecology and Environment, 2022-08 (gdee attachment 3993031.pdf). "
        "domain reference §2.1 [C]; exact effective day [M].",
    ),
]

_MEE2019 = (
    "2019年度减排项目中国区域电网基准线排放因子 (MEE). Values domain reference §2.4 [S]/[M]; weights 0.75/0.25 for "
    "solar per the CDM grid tool [M]. 2022-11-03 official reply: use the regional grid baseline factor, for now "
    "the 2019 edition [C]."
)

GRID_FACTORS = [
    # code, kind, scope, year, om, bm, w_om, w_bm, avg, confidence, source
    (
        "MEE2019-SOUTH-CM",
        "baseline_cm",
        "regional:南方",
        2019,
        "0.8042",
        "0.2135",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2019-NORTH-CM",
        "baseline_cm",
        "regional:华北",
        2019,
        "0.9419",
        "0.4819",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2019-NORTHEAST-CM",
        "baseline_cm",
        "regional:东北",
        2019,
        "1.0826",
        "0.2399",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2019-EAST-CM",
        "baseline_cm",
        "regional:华东",
        2019,
        "0.7921",
        "0.3870",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2019-CENTRAL-CM",
        "baseline_cm",
        "regional:华中",
        2019,
        "0.8587",
        "0.2854",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2019-NORTHWEST-CM",
        "baseline_cm",
        "regional:西北",
        2019,
        "0.8922",
        "0.4407",
        "0.75",
        "0.25",
        None,
        "S/M",
        _MEE2019,
    ),
    (
        "MEE2022-SOUTH-AVG",
        "grid_avg",
        "regional:南方",
        2022,
        None,
        None,
        None,
        None,
        "0.3869",
        "C",
        "2022 regional average grid factor, MEE + NBS (published 2024-12). Not for PV crediting. domain reference §8.3 [C].",
    ),
    (
        "MEE2022-NATIONAL-AVG",
        "grid_avg",
        "national",
        2022,
        None,
        None,
        None,
        None,
        "0.5366",
        "C",
        "2022 national average grid factor, MEE + NBS (published 2024-12). Not for PV crediting. domain reference §8.3 [C].",
    ),
]

ASSIGNMENTS = [
    (
        "GD-PV-2017-V01",
        "MEE2019-SOUTH-CM",
        date(2017, 6, 23),
        "The factor edition of V01 (2017) was not retrieved (domain reference §10.2); the 2019 南方 CM is used until it is [A].",
    ),
    (
        "GD-PV-2022",
        "MEE2019-SOUTH-CM",
        date(2022, 8, 1),
        "Official reply of 2022-11-03: regional grid baseline factor, for now the 2019 MEE edition [C].",
    ),
]


def load_methodology_data(Methodology, GridFactor, FactorAssignment) -> None:  # type: ignore[no-untyped-def]
    def dec(v):  # type: ignore[no-untyped-def]
        return Decimal(v) if v is not None else None

    for code, zh, en, ver, start, end, source in METHODOLOGIES:
        Methodology.objects.update_or_create(
            code=code,
            defaults={
                "name_zh": zh,
                "name_en": en,
                "version": ver,
                "effective_from": start,
                "effective_to": end,
                "source": source,
            },
        )
    for code, kind, scope, year, om, bm, wom, wbm, avg, conf, source in GRID_FACTORS:
        GridFactor.objects.get_or_create(
            code=code,
            defaults={
                "kind": kind,
                "scope": scope,
                "edition_year": year,
                "ef_om": dec(om),
                "ef_bm": dec(bm),
                "w_om": dec(wom),
                "w_bm": dec(wbm),
                "ef_avg": dec(avg),
                "confidence": conf,
                "source": source,
            },
        )
    for mcode, fcode, start, note in ASSIGNMENTS:
        FactorAssignment.objects.get_or_create(
            methodology=Methodology.objects.get(code=mcode),
            valid_from=start,
            defaults={"factor": GridFactor.objects.get(code=fcode), "note": note},
        )
