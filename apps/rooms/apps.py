from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "apps.rooms"
    label = "rooms"
    verbose_name = "Rooms"

    def ready(self) -> None:
        from apps.core import health as core_health

        from . import health

        core_health.register_check("livekit", health.check_livekit)
