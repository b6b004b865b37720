"""Back office of the PV app. Registration data is read here, not written: systems are registered, consents granted
and flags cleared through the services (pages, API), so that every rule applies. Owners' personal data is shown
masked only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from lowcarbon.pv import services
from lowcarbon.pv.models import (
    Community,
    Evidence,
    ManagementConsent,
    PlausibilityFlag,
    ProgrammeClaim,
    PVSystem,
)


class ReadOnlyMixin:
    """No adding, changing or deleting from the back office; the view page shows every field read-only."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Community)
class CommunityAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name_zh", "name_en", "latitude", "longitude")
    search_fields = ("code", "name_zh", "name_en")


class EvidenceInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = Evidence
    extra = 0
    fields = ("kind", "original_name", "uploaded_at")
    readonly_fields = fields


class ProgrammeClaimInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ProgrammeClaim
    extra = 0
    fields = ("programme", "period_start", "period_end", "reference")
    readonly_fields = fields


class ConsentInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ManagementConsent
    extra = 0
    fields = ("aggregator", "document", "granted_at", "revoked_at", "credit_to_aggregator")
    readonly_fields = fields


@admin.register(PVSystem)
class PVSystemAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name", "owner_masked", "community", "capacity_kwp", "grid_connection_date")
    list_filter = ("community", "owner_type", "metering", "is_demo")
    search_fields = ("code", "name", "owner_org__name")
    list_select_related = ("community", "owner_user", "owner_org")
    date_hierarchy = "grid_connection_date"
    fields = (
        "code",
        "name",
        "owner_type",
        "owner_masked",
        "owner_phone_masked",
        "address_masked",
        "community",
        "latitude",
        "longitude",
        "capacity_kwp",
        "tilt_deg",
        "azimuth_deg",
        "grid_connection_date",
        "metering",
        "installer",
        "registered_at",
        "is_demo",
    )
    readonly_fields = fields
    inlines = [EvidenceInline, ProgrammeClaimInline, ConsentInline]

    @admin.display(description=_("owner"))
    def owner_masked(self, obj: PVSystem) -> str:
        return services.owner_label(obj)

    @admin.display(description=_("owner's phone"))
    def owner_phone_masked(self, obj: PVSystem) -> str:
        return services.owner_phone_masked(obj) or "—"

    @admin.display(description=_("address"))
    def address_masked(self, obj: PVSystem) -> str:
        return services.address_for(obj, None)


@admin.register(ManagementConsent)
class ManagementConsentAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("system", "aggregator", "document", "granted_at", "revoked_at", "credit_to_aggregator")
    list_filter = ("aggregator", "system__community", "system__owner_type")
    search_fields = ("system__code", "document", "aggregator__name")
    list_select_related = ("system", "aggregator")
    fields = ("system", "aggregator", "document", "granted_at", "revoked_at", "credit_to_aggregator")
    readonly_fields = fields


@admin.register(PlausibilityFlag)
class PlausibilityFlagAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("system", "month", "code", "severity", "value", "limit", "detected_at", "cleared_at")
    list_filter = ("severity", "code", "system__community", "system__owner_type")
    search_fields = ("system__code",)
    list_select_related = ("system",)
    date_hierarchy = "month"
    fields = (
        "system",
        "month",
        "code",
        "severity",
        "reason",
        "value",
        "limit",
        "parameter_versions",
        "detected_at",
        "cleared_at",
        "clear_note",
    )
    readonly_fields = fields

    @admin.display(description=_("reason"))
    def reason(self, obj: PlausibilityFlag) -> str:
        return services.flag_reason(obj)


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("system", "kind", "original_name", "uploaded_at")
    list_filter = ("kind", "system__community", "system__owner_type")
    search_fields = ("system__code", "original_name")
    list_select_related = ("system",)
    fields = ("system", "kind", "original_name", "uploaded_at")
    readonly_fields = fields
