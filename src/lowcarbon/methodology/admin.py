"""Back office for methodologies, grid-factor editions and factor assignments; quantification results are
read-only, and a factor record used by any result can no longer be edited (a new edition is a new record)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from lowcarbon.methodology.models import FactorAssignment, GridFactor, Methodology, Quantification
from lowcarbon.methodology.services import factor_ef_cm
from lowcarbon.pv.models import PVSystem


def _factor_in_use(factor: GridFactor | None) -> bool:
    return (
        factor is not None and factor.pk is not None and Quantification.objects.filter(factor=factor).exists()
    )


class FactorAssignmentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = FactorAssignment
    extra = 0
    autocomplete_fields = ["factor"]


@admin.register(Methodology)
class MethodologyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "version", "name_zh", "effective_from", "effective_to")
    search_fields = ("code", "name_zh", "name_en")
    inlines = [FactorAssignmentInline]


@admin.register(GridFactor)
class GridFactorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "code",
        "kind",
        "scope",
        "edition_year",
        "ef_om",
        "ef_bm",
        "w_om",
        "w_bm",
        "ef_cm",
        "ef_avg",
        "confidence",
    )
    list_filter = ("kind", "edition_year", "confidence")
    search_fields = ("code", "scope", "source")
    readonly_fields = ("ef_cm", "created_at")

    @admin.display(description=_("EF_CM (kgCO2/kWh)"))
    def ef_cm(self, obj: GridFactor) -> str:
        value = factor_ef_cm(obj)
        return "—" if value is None else f"{value:f}"

    def get_readonly_fields(self, request: HttpRequest, obj: GridFactor | None = None) -> Any:
        if _factor_in_use(obj):
            return [f.name for f in GridFactor._meta.fields] + ["ef_cm"]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: GridFactor | None = None) -> bool:
        if _factor_in_use(obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(FactorAssignment)
class FactorAssignmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("methodology", "factor", "valid_from")
    list_filter = ("methodology",)
    autocomplete_fields = ["factor"]


class CurrentFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "current"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("current")), ("0", _("superseded"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "1":
            return queryset.filter(superseded_at__isnull=True)
        if self.value() == "0":
            return queryset.filter(superseded_at__isnull=False)
        return queryset


@admin.register(Quantification)
class QuantificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "system_code",
        "month",
        "methodology",
        "factor",
        "ef_cm",
        "generation_kwh",
        "er_kg",
        "computed_at",
        "superseded_at",
    )
    list_filter = (CurrentFilter, "methodology", "factor")
    date_hierarchy = "month"
    list_select_related = ("methodology", "factor")

    def get_queryset(self, request: HttpRequest) -> Any:
        codes = PVSystem.objects.filter(pk=OuterRef("system_id")).values("code")[:1]
        return super().get_queryset(request).annotate(system_code_value=Subquery(codes))

    @admin.display(description=_("PV system"), ordering="system_code_value")
    def system_code(self, obj: Quantification) -> str:
        return getattr(obj, "system_code_value", None) or str(obj.system_id)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        if search_term:
            ids = PVSystem.objects.filter(code__icontains=search_term.strip()).values_list("id", flat=True)
            return queryset.filter(system_id__in=list(ids)), False
        return queryset, False

    search_fields = ("system_id",)
    search_help_text = _("PV system code")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Quantification | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Quantification | None = None) -> bool:
        return False
