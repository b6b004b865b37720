"""URL map: pages (i18n-aware), the REST API under /api/v1/, the Chinese back-office under /admin/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog, set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

admin.site.site_header = settings.ADMIN_SITE_HEADER
admin.site.site_title = settings.ADMIN_SITE_HEADER

api_v1 = [
    path("", include("lowcarbon.accounts.api_urls")),
    path("", include("lowcarbon.metering.api_urls")),
    path("", include("lowcarbon.pv.api_urls")),
    path("", include("lowcarbon.methodology.api_urls")),
    path("", include("lowcarbon.registry.api_urls")),
    path("", include("lowcarbon.market.api_urls")),
    path("", include("lowcarbon.finance.api_urls")),
    path("", include("lowcarbon.info.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("i18n/setlang/", set_language, name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("lowcarbon.web.urls")),
    path("", include("lowcarbon.accounts.urls")),
    path("metering/", include("lowcarbon.metering.urls")),
    path("pv/", include("lowcarbon.pv.urls")),
    path("methodology/", include("lowcarbon.methodology.urls")),
    path("registry/", include("lowcarbon.registry.urls")),
    path("market/", include("lowcarbon.market.urls")),
    path("finance/", include("lowcarbon.finance.urls")),
    path("info/", include("lowcarbon.info.urls")),
    path("", include("lowcarbon.dashboard.urls")),
]
