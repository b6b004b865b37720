from django.contrib import admin

from lowcarbon.core.models import Parameter


@admin.register(Parameter)
class ParameterAdmin(admin.ModelAdmin):
    """Parameters are versioned: the back office adds new versions; existing versions are read-only."""

    list_display = ("key", "version", "value", "unit", "valid_from", "confidence", "label_zh")
    list_filter = ("key", "confidence")

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is not None:
            return [f.name for f in self.model._meta.fields]
        return ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
