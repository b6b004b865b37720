from django.urls import path

from lowcarbon.accounts import api

urlpatterns = [path("me/", api.me, name="api-me")]
