"""Outgoing webhooks for LiveKit's room and participant events, connected in WebhooksConfig.ready()."""

from typing import Any

from .services import emit


def room_event(event_type: str, data: dict[str, Any], **kwargs: Any) -> None:
    emit(event_type, data)
