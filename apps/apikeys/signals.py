"""Invalidate every process's cached copy of a key when the key changes or is deleted."""

from typing import Any

from django.db import transaction

from . import keystore
from .guard import get_guard
from .models import ApiKey


def invalidate_cached_key(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= {"last_used_at"}:
        return
    key_id = instance.key_id
    transaction.on_commit(lambda: keystore.invalidate(key_id, get_guard()))
