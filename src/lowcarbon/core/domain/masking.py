"""Masking of personal data for display (ID-card numbers, phone numbers)."""

from __future__ import annotations


def mask_id_number(value: str) -> str:
    """Show the first 3 and last 4 characters of an ID-card number: 442***********1234."""
    v = (value or "").strip()
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


def mask_phone(value: str) -> str:
    """Show the first 3 and last 4 digits of a phone number: 138****5678."""
    v = (value or "").strip()
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_is_valid(value: str) -> bool:
    """Check a mainland resident ID-card number (GB 11643-1999: 18 characters, ISO 7064 MOD 11-2 check digit)."""
    v = (value or "").strip().upper()
    if len(v) != 18 or not v[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == v[17]
