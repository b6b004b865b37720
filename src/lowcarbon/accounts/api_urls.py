from django.urls import path

from lowcarbon.accounts import api

urlpatterns = [
    path("me/", api.me, name="api-me"),
    path("auth/token/", api.obtain_token, name="api-token"),
]
