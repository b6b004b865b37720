from django.urls import path

app_name = "pv"
urlpatterns: list = []
