"""Pages of the readings ingest under /metering/."""

from django.urls import path

from lowcarbon.metering import views

app_name = "metering"
urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("upload/sample.csv", views.sample_csv, name="sample_csv"),
    path("batches/", views.batch_list, name="batch_list"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/quarantine.csv", views.quarantine_csv, name="quarantine_csv"),
]
