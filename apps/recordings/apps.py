from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "apps.recordings"
    label = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        from apps.core import health as core_health
        from apps.rooms.signals import egress_event, livekit_event_strings

        from . import health, receivers

        core_health.register_check("storage", health.check_storage)
        core_health.register_capability("recording", health.recording_available)
        livekit_event_strings.connect(receivers.egress_strings, dispatch_uid="recordings.egress_strings")
        egress_event.connect(receivers.egress_changed, dispatch_uid="recordings.egress_changed")
