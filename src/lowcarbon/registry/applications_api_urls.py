"""REST API of applications under /api/v1/applications/ (names api-application-*)."""

from rest_framework.routers import SimpleRouter

from lowcarbon.registry import applications_api

router = SimpleRouter()
router.register("applications", applications_api.ApplicationViewSet, basename="api-application")

urlpatterns = router.urls
