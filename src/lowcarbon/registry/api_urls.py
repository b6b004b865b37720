"""REST API of applications and the registry under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("lowcarbon.registry.applications_api_urls")),
    path("", include("lowcarbon.registry.ledger_api_urls")),
]
