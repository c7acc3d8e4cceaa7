from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from apps.core.problems import Problem

from . import live, services
from .models import LiveDeadLetter, Segment, Transcription


class SegmentInline(admin.TabularInline):
    model = Segment
    fields = ["start_ms", "end_ms", "speaker", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Transcription | None = None) -> bool:
        return False


@admin.register(Transcription)
class TranscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "room_name", "recording", "language", "duration_seconds", "queued_at"]
    list_filter = ["status", "kind", "room_name", "queued_at"]
    search_fields = ["id", "room_name", "recording__id", "segments__text"]
    readonly_fields = [
        "id", "kind", "status", "room_name", "recording", "language", "duration_seconds", "error", "attempts",
        "queued_at", "next_attempt_at", "lease_expires_at", "started_at", "completed_at", "speakers", "partial_results",
        "dispatch_id",
    ]  # fmt: skip
    inlines = [SegmentInline]
    actions = ["rerun", "stop_live", "export_srt", "export_text"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Transcribe the recording again")
    def rerun(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> None:
        queued = 0
        for transcription in queryset.filter(kind=Transcription.Kind.POST_CALL, recording__isnull=False):
            try:
                services.queue_post_call(transcription.recording, transcription.language)
                queued += 1
            except Problem as problem:
                self.message_user(request, f"{transcription}: {problem.detail}", messages.ERROR)
        self.message_user(request, f"Queued {queued} new transcription(s).", messages.SUCCESS)

    @admin.action(description="Stop the live transcription")
    def stop_live(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> None:
        stopped = 0
        for transcription in queryset.filter(kind=Transcription.Kind.LIVE, status=Transcription.Status.ACTIVE):
            try:
                live.stop(transcription.room_name)
                stopped += 1
            except Problem as problem:
                self.message_user(request, f"{transcription}: {problem.detail}", messages.ERROR)
        self.message_user(request, f"Stopped {stopped} live transcription(s).", messages.SUCCESS)

    def _export(self, queryset: QuerySet[Transcription], output: str, extension: str) -> HttpResponse:
        body = "\n\n".join(services.render(t, output) for t in queryset)
        response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transcripts.{extension}"'
        return response

    @admin.action(description="Export as SRT")
    def export_srt(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> HttpResponse:
        return self._export(queryset, "srt", "srt")

    @admin.action(description="Export as text")
    def export_text(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> HttpResponse:
        return self._export(queryset, "text", "txt")


@admin.register(LiveDeadLetter)
class LiveDeadLetterAdmin(admin.ModelAdmin):
    """Live segments PostgreSQL could not store: read them here, fix by hand if worth it, delete when handled."""

    list_display = ["created_at", "room_name", "transcription_id", "entry_id", "error"]
    list_filter = ["created_at", "room_name"]
    search_fields = ["room_name", "transcription_id", "entry_id", "fields", "error"]
    readonly_fields = ["created_at", "room_name", "transcription_id", "entry_id", "fields", "error"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LiveDeadLetter | None = None) -> bool:
        return False
