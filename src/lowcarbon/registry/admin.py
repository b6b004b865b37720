"""Back office of the registry. Every record here is read, not written: applications move through their workflow,
units are issued, transferred, retired and cancelled only by the services (pages, API, commands), which check the
rules and append to the journal. The journal and the serial blocks are never editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    Cancellation,
    ClaimedMonth,
    IdempotentRequest,
    JournalEntry,
    Notification,
    RegistryAccount,
    Retirement,
    SerialBlock,
    SerialCounter,
    SystemCarry,
    Transfer,
    Transition,
)


class ReadOnlyMixin:
    """No adding, changing or deleting from the back office; the view page shows every field read-only."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class MemberInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ApplicationSystem
    extra = 0
    fields = ("system", "generation_kwh", "er_kg", "carry_in_kg", "units", "carry_out_kg", "credit_account")
    readonly_fields = fields


class TransitionInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = Transition
    extra = 0
    fields = ("at", "from_state", "to_state", "actor", "comment")
    readonly_fields = fields


@admin.register(Application)
class ApplicationAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "code",
        "kind",
        "state",
        "applicant",
        "applicant_org",
        "period_start",
        "period_end",
        "units",
    )
    list_filter = ("state", "kind", "vintage")
    search_fields = ("code", "applicant__username", "applicant__real_name", "applicant_org__name")
    date_hierarchy = "created_at"
    inlines = [MemberInline, TransitionInline]
    list_select_related = ("applicant", "applicant_org")


@admin.register(ApplicationSystem)
class ApplicationSystemAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "application",
        "system",
        "er_kg",
        "carry_in_kg",
        "units",
        "carry_out_kg",
        "credit_account",
    )
    search_fields = ("application__code", "system__code")
    list_select_related = ("application", "system", "credit_account")


@admin.register(ClaimedMonth)
class ClaimedMonthAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("system", "month", "application", "live")
    list_filter = ("live",)
    search_fields = ("system__code", "application__code")
    list_select_related = ("system", "application")


@admin.register(Transition)
class TransitionAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "application", "from_state", "to_state", "actor")
    list_filter = ("to_state",)
    search_fields = ("application__code", "comment")
    list_select_related = ("application", "actor")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("created_at", "user", "message", "read_at")
    search_fields = ("user__username", "message")
    list_select_related = ("user",)


@admin.register(RegistryAccount)
class RegistryAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("number", "holder", "opened_at")
    search_fields = ("number", "owner_user__username", "owner_user__real_name", "owner_org__name")
    list_select_related = ("owner_user", "owner_org")

    @admin.display(description=_("holder"))
    def holder(self, obj: RegistryAccount) -> str:
        return obj.holder_name


@admin.register(SystemCarry)
class SystemCarryAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("system", "kg", "updated_at")
    search_fields = ("system__code",)


@admin.register(SerialCounter)
class SerialCounterAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("series", "last_end")
    search_fields = ("series",)


@admin.register(SerialBlock)
class SerialBlockAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("serial", "state", "account", "vintage", "project_code", "locked_by", "created_at")
    list_filter = ("state", "vintage")
    search_fields = ("series", "project_code", "account__number", "application__code")
    list_select_related = ("account",)


@admin.register(Retirement)
class RetirementAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("number", "account", "quantity", "beneficiary", "purpose", "retired_on")
    list_filter = ("purpose",)
    search_fields = ("number", "beneficiary", "account__number")


@admin.register(Transfer)
class TransferAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("number", "from_account", "to_account", "quantity", "created_at")
    search_fields = ("number", "from_account__number", "to_account__number")


@admin.register(Cancellation)
class CancellationAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("number", "application", "quantity", "actor", "created_at")
    search_fields = ("number", "application__code", "reason")


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("operation", "key", "actor", "created_at")
    search_fields = ("key", "operation")


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("seq", "at", "kind", "actor_id", "hash")
    list_filter = ("kind",)
    search_fields = ("kind", "hash")
