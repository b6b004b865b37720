"""REST API of the readings ingest under /api/v1/."""

from django.urls import path

from lowcarbon.metering import api

urlpatterns = [
    path("readings/batch/", api.ReadingsBatchView.as_view(), name="api-readings-batch"),
    path("ingest-batches/", api.IngestBatchListView.as_view(), name="api-ingest-batch-list"),
    path("ingest-batches/<int:pk>/", api.IngestBatchDetailView.as_view(), name="api-ingest-batch-detail"),
    path(
        "ingest-batches/<int:pk>/quarantine/",
        api.IngestBatchQuarantineView.as_view(),
        name="api-ingest-batch-quarantine",
    ),
]
