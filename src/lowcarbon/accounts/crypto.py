"""Protection of ID-card numbers at rest: Fernet encryption plus a keyed hash for exact look-up."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from django.conf import settings


def _key_material() -> bytes:
    raw = settings.FIELD_KEY or settings.SECRET_KEY
    return hashlib.sha256(("lowcarbon-field-key:" + raw).encode()).digest()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key_material()))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode() if token else ""


def lookup_hash(value: str) -> str:
    return (
        hmac.new(_key_material(), value.strip().upper().encode(), hashlib.sha256).hexdigest() if value else ""
    )
