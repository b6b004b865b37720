"""Default versions of the platform's configurable numbers, each with its source (confidence tags of the domain reference)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

DEFAULT_PARAMETERS = [
    # key, value, unit, valid_from, zh, en, confidence, source
    (
        "pv.capacity_limit_kwp",
        "6000",
        "kWp",
        date(2017, 6, 23),
        "方法学适用装机容量上限",
        "Methodology capacity limit",
        "A",
        "domain reference §2.2: Guangdong cap not seen; 6 MW is the national line for simplified permits (单点并网 < 6 MW).",
    ),
    (
        "pv.interval_ceiling_margin",
        "1.1",
        "×",
        date(2017, 1, 1),
        "区间发电量物理上限裕度",
        "Interval ceiling margin",
        "A",
        "domain reference §4.3: FEA registry bundle_quantity < capacity × hours × 1.1.",
    ),
    (
        "pv.clear_sky_margin",
        "1.1",
        "×",
        date(2017, 1, 1),
        "晴空上限裕度",
        "Clear-sky bound margin",
        "A",
        "domain reference §4.4: flag output > 1.1 × clear-sky AC (cloud-edge enhancement).",
    ),
    (
        "pv.monthly_yield_warn",
        "160",
        "kWh/kWp",
        date(2017, 1, 1),
        "月等效利用小时预警值",
        "Monthly specific yield, warn above",
        "A",
        "domain reference §4.2 bands.",
    ),
    (
        "pv.monthly_yield_reject",
        "200",
        "kWh/kWp",
        date(2017, 1, 1),
        "月等效利用小时拒绝值",
        "Monthly specific yield, reject above",
        "A",
        "domain reference §4.2 bands.",
    ),
    (
        "pv.annual_yield_warn_low",
        "700",
        "kWh/kWp",
        date(2017, 1, 1),
        "年等效利用小时预警下限",
        "Annual specific yield, warn below",
        "A",
        "domain reference §4.2 bands; Zhongshan design 950–1,150 kWh/kWp (§4.1).",
    ),
    (
        "pv.annual_yield_warn_high",
        "1300",
        "kWh/kWp",
        date(2017, 1, 1),
        "年等效利用小时预警上限",
        "Annual specific yield, warn above",
        "A",
        "domain reference §4.2 bands.",
    ),
    (
        "pv.annual_yield_reject",
        "1500",
        "kWh/kWp",
        date(2017, 1, 1),
        "年等效利用小时拒绝值",
        "Annual specific yield, reject above",
        "A",
        "domain reference §4.2 bands.",
    ),
    (
        "pv.daily_yield_reject",
        "7.5",
        "kWh/kWp",
        date(2017, 1, 1),
        "日等效利用小时拒绝值",
        "Daily specific yield, reject above",
        "A",
        "domain reference §4.2: Guangdong clear-sky max ≈ 6.5 kWh/kWp·day.",
    ),
    (
        "pv.performance_ratio_clear_sky",
        "0.86",
        "",
        date(2017, 1, 1),
        "晴空模型系统效率",
        "Clear-sky model system efficiency",
        "C",
        "domain reference §4.4: pvwatts_losses() 14.08% (pvlib 0.16.1 default losses).",
    ),
    (
        "metering.future_tolerance_minutes",
        "5",
        "min",
        date(2017, 1, 1),
        "未来时间戳容差",
        "Future timestamp tolerance",
        "A",
        "Clock skew of meter gateways; online-monitoring spec allows ±1 min per day (domain reference §6.4).",
    ),
]


def load_default_parameters(Parameter) -> None:  # type: ignore[no-untyped-def]
    for key, value, unit, valid_from, zh, en, conf, source in DEFAULT_PARAMETERS:
        Parameter.objects.get_or_create(
            key=key,
            version=1,
            defaults={
                "value": Decimal(value),
                "unit": unit,
                "valid_from": valid_from,
                "label_zh": zh,
                "label_en": en,
                "confidence": conf,
                "source": source,
            },
        )
