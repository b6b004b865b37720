from django.urls import path

from lowcarbon.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("dashboard/", views.public_dashboard, name="public"),
    path("dashboard/data.json", views.public_data, name="public_data"),
    path("my/", views.my_dashboard, name="my"),
    path("my/exports/", views.export_list, name="exports"),
    path("my/exports/<slug:table>.xlsx", views.export_table, name="export"),
    path("my/reports/", views.report_list, name="reports"),
    path("my/reports/town-<int:year>-<int:month>.pdf", views.town_report, name="town_report"),
]
