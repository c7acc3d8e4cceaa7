from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import LiveKitEvent, ParticipantSession, Room, RoomSession


class RoomSessionInline(admin.TabularInline):
    model = RoomSession
    fields = ["sid", "started_at", "ended_at", "session_duration", "peak_participants"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="duration")
    def session_duration(self, obj: RoomSession) -> str:
        return str(obj.duration).split(".")[0] if obj.duration else "ongoing"

    def has_add_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        return False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "origin", "sid", "created_at", "closed_at", "session_count"]
    list_filter = ["origin", "created_at", "closed_at"]
    search_fields = ["name", "sid"]
    readonly_fields = ["sid", "origin", "created_at", "closed_at"]
    inlines = [RoomSessionInline]

    @admin.display(description="sessions")
    def session_count(self, obj: Room) -> int:
        return obj.sessions.count()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return super().get_queryset(request).prefetch_related("sessions")


class ParticipantSessionInline(admin.TabularInline):
    model = ParticipantSession
    fields = ["identity", "name", "sid", "joined_at", "left_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: RoomSession | None = None) -> bool:
        return False


@admin.register(RoomSession)
class RoomSessionAdmin(admin.ModelAdmin):
    list_display = ["room", "sid", "started_at", "ended_at", "peak_participants"]
    list_filter = ["started_at", "ended_at"]
    search_fields = ["room__name", "sid", "participants__identity"]
    readonly_fields = ["room", "sid", "started_at", "ended_at", "peak_participants"]
    list_select_related = ["room"]
    inlines = [ParticipantSessionInline]


@admin.register(LiveKitEvent)
class LiveKitEventAdmin(admin.ModelAdmin):
    list_display = ["event", "room_name", "event_id", "received_at"]
    list_filter = ["event", "received_at"]
    search_fields = ["event_id", "room_name"]
    readonly_fields = ["event", "room_name", "event_id", "received_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
