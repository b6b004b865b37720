"""REST API of PV systems and communities under /api/v1/."""

from rest_framework.routers import SimpleRouter

from lowcarbon.pv import api

router = SimpleRouter()
router.register("pv-systems", api.PVSystemViewSet, basename="api-pv-system")
router.register("communities", api.CommunityViewSet, basename="api-community")

urlpatterns = router.urls
