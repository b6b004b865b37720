"""How the REST API answers a refused request (a DomainError from a service): the HTTP status its code calls for and
the body every endpoint uses, {"detail", "code", "errors"}. Each API names its own refusal codes that mean
"forbidden" (403) or "conflict with the current state" (409); `not_found` is 404 everywhere, anything else 400."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rest_framework import status
from rest_framework.response import Response

from lowcarbon.core.domain.errors import DomainError

#: refusals that mean "try again": the state changed under the request (e.g. units chosen while they moved)
RETRY_CODES = frozenset({"busy"})


def status_for(code: str, *, forbidden: Collection[str] = (), conflict: Collection[str] = ()) -> int:
    if code in forbidden:
        return status.HTTP_403_FORBIDDEN
    if code in conflict or code in RETRY_CODES:
        return status.HTTP_409_CONFLICT
    if code == "not_found":
        return status.HTTP_404_NOT_FOUND
    return status.HTTP_400_BAD_REQUEST


def refusal(
    exc: DomainError,
    errors: list[dict[str, Any]],
    *,
    forbidden: Collection[str] = (),
    conflict: Collection[str] = (),
) -> Response:
    """The response to a refused request: its message and code, the itemised `errors`, and the status."""
    return Response(
        {"detail": exc.message, "code": exc.code, "errors": errors},
        status=status_for(exc.code, forbidden=forbidden, conflict=conflict),
    )
