"""Pages of the guidance, applications, review and issuance queues and notifications (namespace `registry`)."""

from django.urls import path

from lowcarbon.registry import applications_views as views

urlpatterns = [
    path("guidance/", views.guidance, name="guidance"),
    path("guidance.pdf", views.guidance_pdf, name="guidance_pdf"),
    path("applications/", views.application_list, name="application_list"),
    path("applications/new/", views.application_new, name="application_new"),
    path("applications/<str:code>/", views.application_detail, name="application_detail"),
    path("applications/<str:code>/report.pdf", views.application_report, name="application_report"),
    path("applications/<str:code>/action/", views.application_action, name="application_action"),
    path("review/", views.review_queue, name="review_queue"),
    path("issue/", views.issue_queue, name="issue_queue"),
    path("notifications/", views.notifications, name="notifications"),
]
