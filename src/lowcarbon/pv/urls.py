"""Pages of the PV systems under /pv/."""

from django.urls import path

from lowcarbon.pv import views

app_name = "pv"
urlpatterns = [
    path("", views.system_list, name="system_list"),
    path("register/", views.register, name="register"),
    path("bulk/", views.bulk_register, name="bulk_register"),
    path("bulk/template/", views.bulk_template, name="bulk_template"),
    path("flags/", views.flag_queue, name="flag_queue"),
    path("flags/<int:flag_id>/clear/", views.clear_flag, name="clear_flag"),
    path("systems/<str:code>/", views.system_detail, name="system_detail"),
    path("systems/<str:code>/replace-meter/", views.replace_meter, name="replace_meter"),
    path("systems/<str:code>/evidence/", views.add_evidence, name="add_evidence"),
    path("systems/<str:code>/evidence/<int:pk>/", views.evidence_file, name="evidence_file"),
    path("systems/<str:code>/claims/", views.add_claim, name="add_claim"),
    path("systems/<str:code>/consents/", views.grant_consent, name="grant_consent"),
    path("systems/<str:code>/consents/<int:pk>/revoke/", views.revoke_consent, name="revoke_consent"),
]
