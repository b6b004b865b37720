"""Small template helpers of the information pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get(mapping: Any, key: str) -> Any:
    """mapping[key], or None."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def langattr(code: str) -> str:
    """The HTML lang attribute of a text language code ("zh" or "en")."""
    return "en" if code == "en" else "zh-Hans"
