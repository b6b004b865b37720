"""Home page: the public landing and, once logged in, a summary for the person's roles."""

from __future__ import annotations

from django.shortcuts import render


def home(request):  # type: ignore[no-untyped-def]
    from lowcarbon.web.services import home_summary

    return render(request, "web/home.html", {"summary": home_summary(request.user)})
