"""Pages of applications and the registry under /registry/ (application pages: applications_urls; registry and
certificates: registry_urls)."""

from django.urls import include, path

app_name = "registry"
urlpatterns = [
    path("", include("lowcarbon.registry.applications_urls")),
    path("", include("lowcarbon.registry.ledger_urls")),
]
