from django.contrib import admin

from lowcarbon.metering.models import IngestBatch, Meter, MeterReplacement, QuarantinedRow


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = (
        "serial",
        "purpose",
        "quantity",
        "subject_kind",
        "subject_id",
        "installed_at",
        "removed_at",
    )
    list_filter = ("purpose", "quantity", "subject_kind")
    search_fields = ("serial",)
    readonly_fields = ("created_at",)


@admin.register(MeterReplacement)
class MeterReplacementAdmin(admin.ModelAdmin):
    list_display = (
        "old_meter",
        "new_meter",
        "replaced_at",
        "old_final_reading",
        "new_initial_reading",
        "recorded_by",
    )

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # recorded through the replacement service only


class QuarantineInline(admin.TabularInline):
    model = QuarantinedRow
    extra = 0
    can_delete = False
    readonly_fields = ("row_number", "reason", "field", "detail", "meter_serial", "raw")
    max_num = 0


@admin.register(IngestBatch)
class IngestBatchAdmin(admin.ModelAdmin):
    """Batches are read-only: what was delivered and what became of each row is evidence."""

    list_display = (
        "id",
        "source",
        "filename",
        "submitted_by",
        "started_at",
        "rows_total",
        "rows_accepted",
        "rows_duplicate",
        "rows_rejected",
        "status",
    )
    list_filter = ("source", "status")
    search_fields = ("filename",)
    inlines = [QuarantineInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
