"""Log-in rate limiting: after LIMIT failed attempts for one user name from one address within WINDOW seconds,
further attempts are refused until the oldest failure leaves the window. Kept in Django's cache (the "auth" cache
when configured, a file cache shared by the server's processes; else the default cache); a successful log-in clears
the count. Enforced by an authentication backend, so the log-in page, the back office and the API token endpoint
are all covered."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import PermissionDenied

LIMIT = 5
WINDOW = 15 * 60


def _cache() -> Any:
    return caches["auth"] if "auth" in settings.CACHES else caches["default"]


def _key(username: str, ip: str | None) -> str:
    digest = hashlib.sha256(f"{(username or '').strip().lower()}|{ip or '-'}".encode()).hexdigest()
    return f"login-failures:{digest}"


def _recent(username: str, ip: str | None, now: float) -> list[float]:
    stamps = _cache().get(_key(username, ip)) or []
    return [t for t in stamps if now - t < WINDOW]


def is_locked(username: str, ip: str | None) -> bool:
    return len(_recent(username, ip, time.time())) >= LIMIT


def note_failure(username: str, ip: str | None) -> None:
    now = time.time()
    stamps = [*_recent(username, ip, now), now][-LIMIT:]
    _cache().set(_key(username, ip), stamps, WINDOW)


def clear(username: str, ip: str | None) -> None:
    _cache().delete(_key(username, ip))


class RateLimitedModelBackend(ModelBackend):
    """Django's model backend, refusing to check a password while the user name and address are locked out."""

    def authenticate(  # type: ignore[override]
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        from lowcarbon.accounts.audit import client_ip

        name = username if username is not None else kwargs.get("username", "")
        if request is not None and is_locked(str(name or ""), client_ip(request)):
            request._login_throttled = True
            raise PermissionDenied  # authenticate() stops here and reports a failed log-in
        return super().authenticate(request, username=username, password=password, **kwargs)
