from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "lowcarbon.accounts"
    label = "accounts"
    verbose_name = _("Accounts and roles")

    def ready(self) -> None:
        """Connect the audit log to the signals it records from (accounts.audit)."""
        from django.contrib.admin.models import LogEntry
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_delete, post_save

        from lowcarbon.accounts import audit
        from lowcarbon.accounts.models import RoleGrant
        from lowcarbon.core.models import Parameter
        from lowcarbon.info.models import ArticleRevision, DemoProject
        from lowcarbon.market.models import Alert, OffsetProfile
        from lowcarbon.registry import journal

        uid = "lowcarbon-audit"
        user_logged_in.connect(audit.on_logged_in, dispatch_uid=f"{uid}-login")
        user_login_failed.connect(audit.on_login_failed, dispatch_uid=f"{uid}-login-failed")
        post_save.connect(audit.on_role_grant_saved, sender=RoleGrant, dispatch_uid=f"{uid}-role")
        post_delete.connect(audit.on_role_grant_deleted, sender=RoleGrant, dispatch_uid=f"{uid}-role-del")
        post_save.connect(audit.on_parameter_saved, sender=Parameter, dispatch_uid=f"{uid}-param")
        post_save.connect(audit.on_alert_saved, sender=Alert, dispatch_uid=f"{uid}-alert")
        post_save.connect(audit.on_offset_profile_saved, sender=OffsetProfile, dispatch_uid=f"{uid}-offset")
        post_save.connect(audit.on_article_revision_saved, sender=ArticleRevision, dispatch_uid=f"{uid}-art")
        post_save.connect(audit.on_demo_project_saved, sender=DemoProject, dispatch_uid=f"{uid}-proj")
        post_save.connect(audit.on_log_entry_saved, sender=LogEntry, dispatch_uid=f"{uid}-admin")
        journal.appended.connect(audit.on_journal_appended, dispatch_uid=f"{uid}-journal")
