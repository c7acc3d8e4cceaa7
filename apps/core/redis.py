"""The one Redis client of a process, built from REDIS_URL (None when Redis is not configured)."""

from functools import cache
from typing import Any

import redis
from django.conf import settings

# Short timeouts: an unreachable Redis must turn into a 503, not a hung worker.
CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 2.0


@cache
def get_redis() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "REDIS_URL":
        get_redis.cache_clear()
