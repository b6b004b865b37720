"""REST API of the information service under /api/v1/info/ (names api-info-*)."""

from rest_framework.routers import SimpleRouter

from lowcarbon.info import api

router = SimpleRouter()
router.register("info/articles", api.ArticleViewSet, basename="api-info-article")
router.register("info/projects", api.ProjectViewSet, basename="api-info-project")
router.register("info/requests", api.CooperationRequestViewSet, basename="api-info-request")

urlpatterns = router.urls
