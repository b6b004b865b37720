"""Reading versioned parameters (core.models.Parameter)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from lowcarbon.core.models import Parameter


class MissingParameter(LookupError):
    pass


def get_parameter(key: str, on: date | None = None) -> Parameter:
    """The newest version of `key` valid on date `on` (today by default)."""
    on = on or timezone.localdate()
    p = Parameter.objects.filter(key=key, valid_from__lte=on).order_by("-valid_from", "-version").first()
    if p is None:
        p = Parameter.objects.filter(key=key).order_by("valid_from", "version").first()
    if p is None:
        raise MissingParameter(key)
    return p


def param_value(key: str, on: date | None = None) -> Decimal:
    return get_parameter(key, on).value


def set_parameter(key: str, value: Decimal, valid_from: date, source: str, user=None, **extra) -> Parameter:  # type: ignore[no-untyped-def]
    """Add a new version of a parameter (the old versions stay)."""
    last = Parameter.objects.filter(key=key).order_by("-version").first()
    base = {}
    if last is not None:
        base = {
            "unit": last.unit,
            "label_zh": last.label_zh,
            "label_en": last.label_en,
            "confidence": last.confidence,
        }
    base.update(extra)
    return Parameter.objects.create(
        key=key,
        version=(last.version + 1) if last else 1,
        value=value,
        valid_from=valid_from,
        source=source,
        created_by=user,
        **base,
    )
