"""Request hygiene: a NUL character in the address or its query is refused (400) before any view runs. PostgreSQL
cannot store or compare text containing NUL, so such a parameter used in a filter would otherwise fail as a server
error; no legitimate request carries one."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class RejectNulCharactersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest("NUL character in the request.", content_type="text/plain")
        return self.get_response(request)
