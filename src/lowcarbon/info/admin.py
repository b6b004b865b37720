"""Back-office views of notices, projects and cooperation requests (read-mostly; changes go through the pages)."""

from django.contrib import admin

from lowcarbon.info.models import Article, CooperationRequest, DemoProject


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["pk", "category", "title_zh", "title_en", "published", "publish_at", "updated_at"]
    list_filter = ["category", "published"]
    search_fields = ["title_zh", "title_en"]
    readonly_fields = ["created_by", "updated_by", "created_at", "updated_at"]


@admin.register(DemoProject)
class DemoProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["pk", "kind", "name_zh", "owner_org", "published"]
    list_filter = ["kind", "published"]
    raw_id_fields = ["owner_org", "owner_user", "pv_systems"]


@admin.register(CooperationRequest)
class CooperationRequestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["pk", "project", "organisation", "name", "state", "created_at"]
    list_filter = ["state"]
    readonly_fields = ["sender_ip", "created_at", "answered_at", "answered_by"]
