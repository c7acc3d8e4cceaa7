from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    verbose_name = "Support dashboard"

    def ready(self) -> None:
        from apps.transcription.signals import live_segments_stored, live_session_changed, persister_started

        from . import events, relay

        live_session_changed.connect(events.session_changed, dispatch_uid="dashboard.session_changed")
        live_segments_stored.connect(events.segments_stored, dispatch_uid="dashboard.segments_stored")
        persister_started.connect(relay.start, dispatch_uid="dashboard.relay")
