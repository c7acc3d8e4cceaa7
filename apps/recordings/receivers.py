"""Recordings' reactions to LiveKit's egress events, connected in RecordingsConfig.ready()."""

from typing import Any

from livekit import api

from apps.webhooks.services import emit

from . import services
from .models import Recording
from .serializers import RecordingSerializer
from .signals import recording_finished


def egress_strings(event: api.WebhookEvent, **kwargs: Any) -> list[tuple[str, str, int | None]]:
    """The egress strings this app stores or looks up, so the receiver refuses the event before storing any."""
    storage_key_length = Recording._meta.get_field("storage_key").max_length
    return [
        ("egressInfo.egressId", event.egress_info.egress_id, None),  # only looked up
        ("egressInfo.error", event.egress_info.error, None),
        *(("egressInfo.fileResults.filename", r.filename, storage_key_length) for r in event.egress_info.file_results),
    ]


def egress_changed(event: api.WebhookEvent, **kwargs: Any) -> None:
    """Apply the egress's state to its recording and tell the webhook endpoints when it started or ended."""
    recording = services.apply_egress(event.egress_info)
    if recording is None:
        return
    if event.event == "egress_started":
        emit("recording_started", RecordingSerializer(recording).data)
    elif event.event == "egress_ended":
        emit("recording_finished", RecordingSerializer(recording).data)
        recording_finished.send(sender=Recording, recording=recording)
