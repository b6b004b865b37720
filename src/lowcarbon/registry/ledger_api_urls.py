"""REST API of the registry under /api/v1/registry/ (names api-registry-*)."""

from django.urls import path

from lowcarbon.registry import ledger_api as api

urlpatterns = [
    path("registry/accounts/me/", api.AccountMeView.as_view(), name="api-registry-account-me"),
    path("registry/transfers/", api.TransferCreateView.as_view(), name="api-registry-transfers"),
    path("registry/retirements/", api.RetirementCreateView.as_view(), name="api-registry-retirements"),
    path(
        "registry/retirements/<str:number>/",
        api.PublicRetirementView.as_view(),
        name="api-registry-retirement-detail",
    ),
    path("registry/blocks/", api.PublicBlockListView.as_view(), name="api-registry-blocks"),
]
