"""The audit log: log-ins (success and failure) and administrative acts, recorded as AuditEvent rows.

Events are recorded from signals, so that every door (pages, API, command line, back office) is covered without the
services knowing about the log: Django's log-in signals, saves of role grants, parameters, market alerts and offset
profiles, publication of notices and demonstration projects, the back office's own LogEntry, and the registry
journal (issuance, cancellation). The request being served, if any, gives the actor, address and browser."""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse

from lowcarbon.accounts.models import AuditEvent

_current: contextvars.ContextVar[Any] = contextvars.ContextVar("lowcarbon_audit_request", default=None)

Kind = AuditEvent.Kind


class AuditContextMiddleware:
    """Remembers the request being served, so that events recorded from signals know who acted and from where."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


def client_ip(request: Any) -> str | None:
    """The address the request came from: REMOTE_ADDR, or behind a trusted proxy (LOWCARBON_TRUST_PROXY) the last
    address of X-Forwarded-For, the one the proxy itself added."""
    if request is None:
        return None
    from django.conf import settings

    meta = getattr(request, "META", {}) or {}
    forwarded = str(meta.get("HTTP_X_FORWARDED_FOR", ""))
    if forwarded and getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        last = _valid_ip(forwarded.split(",")[-1])
        if last:
            return last
    return _valid_ip(str(meta.get("REMOTE_ADDR") or ""))


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _user_of(request: Any) -> Any:
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def event(
    kind: str,
    *,
    actor: Any = None,
    username: str = "",
    target: str = "",
    request: Any = None,
    **detail: Any,
) -> AuditEvent:
    """Record one event. The actor defaults to the person of the request being served."""
    return AuditEvent.objects.create(**_fields(kind, actor, username, target, request, detail))


def events(rows: Iterable[tuple[str, Any, str, dict[str, Any]]]) -> None:
    """Record several events (kind, actor, target, detail) at once."""
    AuditEvent.objects.bulk_create([AuditEvent(**_fields(k, a, "", t, None, d)) for k, a, t, d in rows])


def _fields(
    kind: str, actor: Any, username: str, target: str, request: Any, detail: dict[str, Any]
) -> dict[str, Any]:
    request = request if request is not None else _current.get()
    if actor is None:
        actor = _user_of(request)
    elif isinstance(actor, int):
        from lowcarbon.accounts.models import User

        actor = User.objects.filter(pk=actor).first()
    meta = getattr(request, "META", {}) or {}
    return {
        "kind": kind,
        "actor": actor,
        "username": (username or (actor.get_username() if actor is not None else ""))[:150],
        "ip": client_ip(request),
        "user_agent": str(meta.get("HTTP_USER_AGENT", ""))[:300],
        "target": str(target)[:200],
        "detail": detail,
    }


# ---------------------------------------------------------------------------------------------------------------
# signal receivers (connected in AccountsConfig.ready)


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from lowcarbon.accounts import throttle

    throttle.clear(user.get_username(), client_ip(request))
    event(Kind.LOGIN_SUCCEEDED, actor=user, request=request)


def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from lowcarbon.accounts import throttle

    username = str(credentials.get("username") or "")[:150]
    if getattr(request, "_login_throttled", False):
        event(Kind.LOGIN_THROTTLED, username=username, request=request)
        return
    throttle.note_failure(username, client_ip(request))
    event(Kind.LOGIN_FAILED, username=username, request=request)


def on_role_grant_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        event(
            Kind.ROLE_GRANTED,
            target=instance.user.get_username(),
            role=instance.role,
            organisation=instance.organisation.name if instance.organisation_id else None,
        )


def on_role_grant_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    event(Kind.ROLE_REVOKED, target=_username(instance.user_id), role=instance.role)


def _username(user_id: int | None) -> str:
    from lowcarbon.accounts.models import User

    return User.objects.filter(pk=user_id).values_list("username", flat=True).first() or ""


def on_parameter_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        event(
            Kind.PARAMETER_CHANGED,
            actor=instance.created_by,
            target=f"{instance.key} v{instance.version}",
            value=str(instance.value),
            valid_from=str(instance.valid_from),
        )


def on_alert_saved(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    if update_fields and "reviewed_at" in update_fields and instance.reviewed_at is not None:
        event(
            Kind.ALERT_REVIEWED,
            actor=instance.reviewed_by,
            target=f"{instance.kind} #{instance.pk}",
            note=instance.review_note[:500],
        )


def on_offset_profile_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        event(
            Kind.OFFSET_PROFILE,
            actor=instance.recorded_by,
            target=f"{instance.account.number} {instance.year}",
            verified_emissions_t=instance.verified_emissions_t,
            annual_cap_t=instance.annual_cap_t,
        )


def on_article_revision_saved(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if not created or raw or instance.action not in ("published", "scheduled", "unpublished"):
        return
    kind = Kind.CONTENT_UNPUBLISHED if instance.action == "unpublished" else Kind.CONTENT_PUBLISHED
    event(kind, actor=instance.edited_by, target=f"article {instance.article_id}", action=instance.action)


def on_demo_project_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and "published" in update_fields:
        kind = Kind.CONTENT_PUBLISHED if instance.published else Kind.CONTENT_UNPUBLISHED
        event(kind, target=f"project {instance.pk}")


def on_log_entry_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        event(
            Kind.ADMIN_ACTION,
            actor=instance.user,
            target=f"{instance.content_type.app_label}.{instance.content_type.model} {instance.object_id}"
            if instance.content_type_id
            else str(instance.object_id or ""),
            action={1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, str(instance.action_flag)),
            object=instance.object_repr[:200],
            message=instance.get_change_message()[:500],
        )


def on_journal_appended(sender: Any, entries: Iterable[Any], **kwargs: Any) -> None:
    rows = []
    for e in entries:
        if e.kind == "issue":
            rows.append((Kind.UNITS_ISSUED, e.actor_id, e.payload.get("application", ""), _ledger_detail(e)))
        elif e.kind == "cancel":
            detail = {**_ledger_detail(e), "reason": str(e.payload.get("reason", ""))[:500]}
            rows.append((Kind.UNITS_CANCELLED, e.actor_id, e.payload.get("application", ""), detail))
    if not rows:
        return
    request = _current.get()
    actors = {a for _k, a, _t, _d in rows if a is not None}
    from lowcarbon.accounts.models import User

    people = User.objects.in_bulk(actors)
    events((k, people.get(a) if a is not None else _user_of(request), t, d) for k, a, t, d in rows)


def _ledger_detail(entry: Any) -> dict[str, Any]:
    return {"journal_seq": entry.seq, "quantity": entry.payload.get("quantity")}
