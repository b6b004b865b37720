"""Registry pages under /registry/ (namespace `registry`): my account, transfer and retirement forms, certificates,
the public registry (no log-in) and the administrators' cancellation."""

from django.urls import path

from lowcarbon.registry import ledger_views as views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/transfer/", views.transfer, name="transfer"),
    path("account/retire/", views.retire, name="retire"),
    path(
        "certificates/retirement/<str:number>.pdf",
        views.retirement_certificate,
        name="retirement_certificate",
    ),
    path("certificates/issuance/<str:code>.pdf", views.issuance_certificate, name="issuance_certificate"),
    path("public/", views.public_search, name="public_search"),
    path("public/blocks/<int:pk>/", views.public_block, name="public_block"),
    path("public/retirements/<str:number>/", views.public_retirement, name="public_retirement"),
    path("cancel/", views.admin_cancel, name="admin_cancel"),
]
