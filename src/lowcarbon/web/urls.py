from django.urls import path

from lowcarbon.web import views

urlpatterns = [path("", views.home, name="home")]
