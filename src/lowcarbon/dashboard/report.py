"""The monthly town report (PDF, in Chinese): PV capacity, generation, avoided emissions, issuance, transfers,
retirements and trades of one month, from rollups and registry tables. It uses the same k-anonymous aggregates as
the public dashboard, so it can be published as it is."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation

from lowcarbon.dashboard import services
from lowcarbon.dashboard.domain import anonymity, metrics
from lowcarbon.metering.models import MeterReplacement, MonthlyRollup
from lowcarbon.methodology.models import Quantification
from lowcarbon.pv.models import Community, OwnerType, PVSystem

REPORT_LANGUAGE = "zh-hans"


def report_months(now: datetime | None = None) -> list[date]:
    """Months a report can be made for, newest first: from the first month with data to the current month."""
    current = metrics.month_start(timezone.localtime(now or timezone.now()).date())
    first = services.first_data_month() or current
    return list(reversed(metrics.months(first, current)))


def _d(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def report_context(month: date, now: datetime | None = None) -> dict[str, Any]:
    """Figures of the month (and the year to its end) for the town report."""
    from lowcarbon.registry.ledger import _QTY
    from lowcarbon.registry.models import Application, Retirement, SerialBlock, Transfer

    now = now or timezone.now()
    k = services.k_threshold()
    month = metrics.month_start(month)
    nxt = metrics.add_months(month, 1)
    start, end = services._month_bounds(month)
    year_start = date(month.year, 1, 1)

    connected = PVSystem.objects.filter(grid_connection_date__lt=nxt)
    totals = connected.aggregate(n=Count("id"), cap=Sum("capacity_kwp"))
    new = PVSystem.objects.filter(grid_connection_date__gte=month, grid_connection_date__lt=nxt).aggregate(
        n=Count("id"), cap=Sum("capacity_kwp")
    )
    by_type_rows = {
        r["owner_type"]: (r["n"], r["cap"] or Decimal(0))
        for r in connected.values("owner_type").annotate(n=Count("id"), cap=Sum("capacity_kwp")).order_by()
    }
    labels = dict(OwnerType.choices)
    by_type = [
        {"label": labels[c.key], "systems": c.count, "capacity_kwp": c.capacity_kwp}
        for c in anonymity.suppress_categories(
            {t: by_type_rows.get(t, (0, Decimal(0))) for t in OwnerType.values},
            k,
            protected={OwnerType.HOUSEHOLD},
        )
    ]
    communities = {c.pk: c for c in Community.objects.all()}
    sites = [
        anonymity.Site(
            communities[r["community_id"]].code,
            communities[r["community_id"]].latitude,
            communities[r["community_id"]].longitude,
            r["n"],
            r["cap"] or Decimal(0),
        )
        for r in connected.values("community_id").annotate(n=Count("id"), cap=Sum("capacity_kwp")).order_by()
    ]
    names = {c.code: c.name_zh for c in communities.values()}
    areas = [
        {"names": "、".join(names[x] for x in a.keys), "systems": a.count, "capacity_kwp": a.capacity_kwp}
        for a in anonymity.k_anonymous_areas(sites, k)
    ]

    pv_meter_ids = services._pv_meters().values("id")
    gen_month = MonthlyRollup.objects.filter(meter_id__in=pv_meter_ids, month=month).aggregate(
        kwh=Sum("energy"), n=Count("meter_id")
    )
    gen_ytd = MonthlyRollup.objects.filter(
        meter_id__in=pv_meter_ids, month__gte=year_start, month__lte=month
    ).aggregate(kwh=Sum("energy"))
    current_q = Quantification.objects.filter(superseded_at__isnull=True)
    q_month = current_q.filter(month=month).aggregate(
        er=Sum("er_kg"), kwh=Sum("generation_kwh"), n=Count("id")
    )
    q_ytd = current_q.filter(month__gte=year_start, month__lte=month).aggregate(er=Sum("er_kg"))

    issued_month = SerialBlock.objects.filter(parent__isnull=True, created_at__gte=start, created_at__lt=end)
    issued_total = SerialBlock.objects.filter(parent__isnull=True, created_at__lt=end).aggregate(q=Sum(_QTY))[
        "q"
    ]
    retired = Retirement.objects.filter(retired_on__gte=month, retired_on__lt=nxt).aggregate(
        q=Sum("quantity"), n=Count("id")
    )
    retired_total = Retirement.objects.filter(retired_on__lt=nxt).aggregate(q=Sum("quantity"))["q"]
    transfers = Transfer.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        q=Sum("quantity"), n=Count("id")
    )
    apps_issued = Application.objects.filter(issued_at__gte=start, issued_at__lt=end).count()

    market: dict[str, Any] | None = None
    stats = services.market_stats()
    if stats is not None:
        last_day = min(metrics.add_months(month, 1), timezone.localtime(now).date() + timedelta(days=1))
        days = [
            metrics.DayPoint(
                d["day"],
                d.get("open"),
                d.get("close"),
                int(d.get("volume_t") or 0),
                _d(d.get("value_cny")),
                int(d.get("trades") or 0),
            )
            for d in stats.daily_series(month, last_day - timedelta(days=1))
        ]
        mp = metrics.monthly_market(days)
        point = mp[0] if mp else None
        market = {
            "trades": point.trades if point else 0,
            "volume_t": point.volume_t if point else 0,
            "value_cny": point.value_cny if point else Decimal(0),
            "average_price": point.average_price if point else None,
            "close": point.close if point else None,
            "days": [d for d in days if d.trades],
        }

    gen_publishable = anonymity.publishable((gen_month["n"] or 0) - MeterReplacement.objects.count(), k)
    q_publishable = anonymity.publishable(q_month["n"] or 0, k)
    return {
        "month": month,
        "k": k,
        "systems": totals["n"] or 0,
        "capacity_kwp": _d(totals["cap"]),
        "publishable": anonymity.publishable(totals["n"] or 0, k),
        "new_systems": new["n"] or 0,
        "new_capacity_kwp": _d(new["cap"]),
        "by_type": by_type,
        "areas": areas,
        "generation_kwh": _d(gen_month["kwh"]) if gen_publishable else None,
        "generation_ytd_kwh": _d(gen_ytd["kwh"]),
        "quantified_kwh": _d(q_month["kwh"]) if q_publishable else None,
        "er_kg": _d(q_month["er"]) if q_publishable else None,
        "er_t": (_d(q_month["er"]) / 1000).quantize(Decimal("0.01")) if q_publishable else None,
        "er_ytd_t": (_d(q_ytd["er"]) / 1000).quantize(Decimal("0.01")),
        "issued": int(issued_month.aggregate(q=Sum(_QTY))["q"] or 0),
        "issued_blocks": issued_month.count(),
        "applications_issued": apps_issued,
        "issued_total": int(issued_total or 0),
        "retired": int(retired["q"] or 0),
        "retirements": retired["n"] or 0,
        "retired_total": int(retired_total or 0),
        "transferred": int(transfers["q"] or 0),
        "transfers": transfers["n"] or 0,
        "market": market,
        "market_ready": stats is not None,
        "generated_at": timezone.localtime(now),
        "complete_month": end <= now,
    }


def report_html(month: date, now: datetime | None = None) -> str:
    with translation.override(REPORT_LANGUAGE):
        return render_to_string("dashboard/town_report_pdf.html", report_context(month, now))


def report_pdf(month: date, now: datetime | None = None) -> bytes:
    """The town report of the month as an A4 PDF (fonts from fontconfig, as for the registry's certificates)."""
    from lowcarbon.registry.certificates import html_to_pdf

    return html_to_pdf(report_html(month, now))
