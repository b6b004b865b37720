from django.contrib.auth import views as auth_views
from django.urls import path

from lowcarbon.accounts import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/token/", views.api_token, name="account_token"),
    path("account/password/", views.PasswordChangeView.as_view(), name="account_password"),
    path("account/audit/", views.audit_log, name="audit_log"),
]
