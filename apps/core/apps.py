from django.apps import AppConfig
from django.core.signals import setting_changed


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "RTCstack core"

    def ready(self) -> None:
        from . import redis, schema  # noqa: F401 - schema registers the OpenAPI auth extension

        setting_changed.connect(redis.reset_on_setting_change)
