from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from apps.rooms.signals import room_event

        from . import receivers

        room_event.connect(receivers.room_event, dispatch_uid="webhooks.room_event")
