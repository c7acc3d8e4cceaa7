from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.core.problems import Problem

from . import services
from .models import Recording
from .storage import download_url


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["id", "room_name", "source", "status", "size_bytes", "duration_seconds", "created_at", "download"]
    list_filter = ["status", "source", "audio_only", "created_at"]
    search_fields = ["id", "room_name", "egress_id", "storage_key"]
    readonly_fields = [
        "id", "room_name", "egress_id", "source", "status", "audio_only", "storage_key", "size_bytes",
        "duration_seconds", "error", "started_at", "ended_at", "created_at", "download",
    ]  # fmt: skip

    @admin.display(description="file")
    def download(self, obj: Recording) -> str:
        if obj.status != Recording.Status.COMPLETED or not obj.storage_key:
            return "—"
        return format_html('<a href="{}">Download</a>', download_url(obj.storage_key))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Recording) -> None:
        """Deletes the file too; a recording still in progress is kept, with the reason shown."""
        try:
            services.delete(obj)
        except Problem as problem:
            self.message_user(request, f"{obj}: {problem.detail}", messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        for recording in queryset:
            self.delete_model(request, recording)
