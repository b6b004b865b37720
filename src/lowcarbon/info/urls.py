"""Pages of the information service and demonstration projects under /info/ (namespace `info`)."""

from django.urls import path

from lowcarbon.info import views

app_name = "info"
urlpatterns = [
    path("", views.article_list, name="article_list"),
    path("<int:pk>/", views.article_detail, name="article_detail"),
    path("attachments/<int:pk>/", views.attachment_file, name="attachment_file"),
    path("projects/", views.project_list, name="project_list"),
    path("projects/<int:pk>/", views.project_detail, name="project_detail"),
    path("photos/<int:pk>/", views.photo_file, name="photo_file"),
    path("photos/<int:pk>/thumb/", views.photo_thumb, name="photo_thumb"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:pk>/answer/", views.request_answer, name="request_answer"),
    path("manage/", views.manage, name="manage"),
    path("manage/articles/new/", views.article_new, name="article_new"),
    path("manage/articles/<int:pk>/", views.article_edit, name="article_edit"),
    path("manage/articles/<int:pk>/publish/", views.article_publish, name="article_publish"),
    path("manage/articles/<int:pk>/unpublish/", views.article_unpublish, name="article_unpublish"),
    path("manage/articles/<int:pk>/attachments/", views.attachment_add, name="attachment_add"),
    path("manage/attachments/<int:pk>/delete/", views.attachment_delete, name="attachment_delete"),
    path("manage/projects/new/", views.project_new, name="project_new"),
    path("manage/projects/<int:pk>/", views.project_edit, name="project_edit"),
    path("manage/projects/<int:pk>/publish/", views.project_publish, name="project_publish"),
    path("manage/projects/<int:pk>/outcomes/", views.outcome_add, name="outcome_add"),
    path("manage/outcomes/<int:pk>/delete/", views.outcome_delete, name="outcome_delete"),
    path("manage/projects/<int:pk>/photos/", views.photo_add, name="photo_add"),
    path("manage/photos/<int:pk>/delete/", views.photo_delete, name="photo_delete"),
]
