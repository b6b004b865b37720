"""REST API of investment and financing under /api/v1/finance/ (names api-finance-*)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from lowcarbon.finance import api

router = SimpleRouter()
router.register("finance/projects", api.ProjectViewSet, basename="api-finance-project")

urlpatterns = [
    path("finance/pipeline/", api.PipelineView.as_view(), name="api-finance-pipeline"),
    path("finance/estimate/", api.EstimateView.as_view(), name="api-finance-estimate"),
    *router.urls,
]
