from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import AuditEvent, Membership, Organisation, RoleGrant, User


class RoleGrantInline(admin.TabularInline):
    model = RoleGrant
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(User)
class PersonAdmin(UserAdmin):
    list_display = ("username", "real_name", "phone_masked", "id_number_masked", "is_staff")
    search_fields = ("username", "real_name")
    fieldsets = (
        *UserAdmin.fieldsets,
        (_("Real-name data"), {"fields": ("real_name", "phone", "preferred_language")}),
    )
    inlines = [RoleGrantInline, MembershipInline]

    @admin.display(description=_("phone"))
    def phone_masked(self, obj):  # type: ignore[no-untyped-def]
        return obj.phone_masked

    @admin.display(description=_("ID-card number"))
    def id_number_masked(self, obj):  # type: ignore[no-untyped-def]
        return obj.id_number_masked


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "name_en", "kind", "credit_code")
    list_filter = ("kind",)
    search_fields = ("name", "name_en", "credit_code")
    inlines = [MembershipInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: events are written by the platform, never added, edited or deleted by hand."""

    list_display = ("at", "kind", "username", "target", "ip", "user_agent")
    list_filter = ("kind",)
    search_fields = ("username", "target", "ip")
    date_hierarchy = "at"
    readonly_fields = ("at", "kind", "actor", "username", "ip", "user_agent", "target", "detail")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
