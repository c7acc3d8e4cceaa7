from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save


class ApiKeysConfig(AppConfig):
    name = "apps.apikeys"
    label = "apikeys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from apps.core import crypto

        from . import checks, keystore  # noqa: F401 - registers the system checks
        from .models import ApiKey
        from .signals import invalidate_cached_key

        post_save.connect(invalidate_cached_key, sender=ApiKey, dispatch_uid="apikeys-invalidate-save")
        post_delete.connect(invalidate_cached_key, sender=ApiKey, dispatch_uid="apikeys-invalidate-delete")

        def reset(*, setting: str, **kwargs: Any) -> None:
            if setting in {"API_KEY_ENCRYPTION_KEYS", "SECRET_KEY", "REDIS_URL"}:
                crypto.reset_cache()
                keystore.clear()

        setting_changed.connect(reset, weak=False)
