"""Public page of methodologies and grid emission factors (transparency: what every result was computed with)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from lowcarbon.methodology.services import methodology_overview


def factors(request: HttpRequest) -> HttpResponse:
    """Methodology versions with their effective dates and sources, the factor each uses from when, and every
    grid-factor edition with its computed combined margin."""
    methodologies, factor_rows = methodology_overview()
    return render(
        request, "methodology/factors.html", {"methodologies": methodologies, "factors": factor_rows}
    )
