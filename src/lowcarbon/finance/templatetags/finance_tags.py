"""Small template helpers of the finance pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def get(mapping: Any, key: str) -> Any:
    """mapping[key], or an empty list when absent (used for field errors and values)."""
    try:
        return mapping.get(key, [])
    except AttributeError:
        return []


@register.filter
def pct(value: Any) -> str:
    """A fraction as a percentage with one decimal (0.1159 → 11.6 %)."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:.1f} %"


@register.filter
def money(value: Any) -> str:
    """CNY with thousands separators and no decimals."""
    if value is None:
        return "—"
    return f"{Decimal(value):,.0f}"


@register.filter
def num(value: Any, places: int = 0) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.{int(places)}f}"
