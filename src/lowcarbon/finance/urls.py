"""Pages of investment and financing (namespace `finance`)."""

from django.urls import path

from lowcarbon.finance import views

app_name = "finance"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("projects/new/", views.project_new, name="project_new"),
    path("projects/<str:code>/", views.project_detail, name="project_detail"),
    path("projects/<str:code>/edit/", views.project_edit, name="project_edit"),
    path("projects/<str:code>/action/", views.project_action, name="project_action"),
    path("projects/<str:code>/interest/", views.project_interest, name="project_interest"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("financiers/signup/", views.financier_signup, name="financier_signup"),
    path("estimator/", views.estimator, name="estimator"),
]
