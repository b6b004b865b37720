from django.urls import path

app_name = "methodology"
urlpatterns: list = []
