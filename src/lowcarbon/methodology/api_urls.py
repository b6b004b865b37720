from django.urls import path

from lowcarbon.methodology import api

urlpatterns = [
    path("methodologies/", api.MethodologyList.as_view(), name="api-methodologies"),
    path("grid-factors/", api.GridFactorList.as_view(), name="api-grid-factors"),
    path("quantifications/", api.QuantificationList.as_view(), name="api-quantifications"),
    path("quantify/", api.QuantifyView.as_view(), name="api-quantify"),
]
