"""Market figures for pages and dashboards, from the trade table (never typed in)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Sum
from django.utils import timezone

from lowcarbon.market import services
from lowcarbon.market.models import Trade


def daily_series(date_from: date, date_to: date) -> list[dict[str, Any]]:
    """One row per day in [date_from, date_to] from the first trade on: day, open, close (CNY/t or None), volume_t,
    value_cny, trades. Days before the first trade are left out."""
    return [
        {k: row[k] for k in ("day", "open", "close", "volume_t", "value_cny", "trades")}
        for row in services.closes(date_to)
        if row["day"] >= date_from
    ]


def indicative_price() -> Decimal | None:
    """The latest close (CNY per tonne): indicative, not a quote. None before any trade."""
    if not Trade.objects.exists():
        return None
    return services.reference_price(timezone.localdate() + timedelta(days=1))


def totals() -> dict[str, Any]:
    agg = Trade.objects.aggregate(
        volume=Sum("quantity"), value=Sum(F("price") * F("quantity")), n=Count("id")
    )
    return {
        "volume_t": int(agg["volume"] or 0),
        "value_cny": Decimal(agg["value"] or 0).quantize(Decimal("0.01")),
        "trades": int(agg["n"] or 0),
    }
