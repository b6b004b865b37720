from django.urls import path

from lowcarbon.methodology import views

app_name = "methodology"
urlpatterns = [
    path("", views.factors, name="factors"),
]
