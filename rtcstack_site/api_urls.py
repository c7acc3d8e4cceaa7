"""Every /v1 route in one table, grouped by resource, so any endpoint's view is one hop away.

rtcstack_site/urls.py mounts this module at ``v1/``; the catch-all stays last so an unknown
/v1 path gets a problem response instead of the HTML 404 page.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core
from apps.core.problems import unknown_endpoint
from apps.recordings import views as recordings
from apps.rooms import views as rooms
from apps.transcription import views as transcription
from apps.webhooks import views as webhooks

urlpatterns = [
    # Token
    path("token", rooms.TokenView.as_view(), name="token"),
    path("token/refresh", rooms.TokenRefreshView.as_view(), name="token-refresh"),
    # Rooms
    path("rooms", rooms.RoomsView.as_view(), name="rooms"),
    path("rooms/<str:room_id>", rooms.RoomView.as_view(), name="room"),
    # Participants
    path("rooms/<str:room_id>/participants", rooms.ParticipantsView.as_view(), name="participants"),
    path("rooms/<str:room_id>/participants/<str:participant_id>", rooms.ParticipantView.as_view(), name="participant"),
    path("rooms/<str:room_id>/participants/<str:participant_id>/mute", rooms.MuteView.as_view(), name="mute"),
    # Ingress
    path("rooms/<str:room_id>/ingress", rooms.IngressesView.as_view(), name="ingresses"),
    path("rooms/<str:room_id>/ingress/<str:ingress_id>", rooms.IngressView.as_view(), name="ingress"),
    # Recording (of one room)
    path("rooms/<str:room_id>/recording", recordings.RoomRecordingView.as_view(), name="room-recording"),
    path("rooms/<str:room_id>/recording/start", recordings.StartRecordingView.as_view(), name="recording-start"),
    path("rooms/<str:room_id>/recording/stop", recordings.StopRecordingView.as_view(), name="recording-stop"),
    # Transcription (live, of one room)
    path("rooms/<str:room_id>/transcription", transcription.LiveTranscriptView.as_view(), name="live-transcript"),
    path("rooms/<str:room_id>/transcription/start", transcription.StartLiveView.as_view(), name="live-start"),
    path("rooms/<str:room_id>/transcription/stop", transcription.StopLiveView.as_view(), name="live-stop"),
    path("rooms/<str:room_id>/transcription/speakers", transcription.SpeakersView.as_view(), name="live-speakers"),
    # Recordings
    path("recordings", recordings.RecordingsView.as_view(), name="recordings"),
    path("recordings/<str:recording_id>", recordings.RecordingView.as_view(), name="recording"),
    path(
        "recordings/<str:recording_id>/transcribe", transcription.TranscribeRecordingView.as_view(), name="transcribe"
    ),
    # Transcriptions
    path("transcriptions", transcription.TranscriptionsView.as_view(), name="transcriptions"),
    path("transcriptions/<str:transcription_id>", transcription.TranscriptionView.as_view(), name="transcription"),
    # Webhooks (outgoing)
    path("webhooks", webhooks.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", webhooks.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<str:webhook_id>/rotate-secret", webhooks.WebhookRotateSecretView.as_view(), name="webhook-rotate"),
    path("webhooks/<str:webhook_id>/test", webhooks.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<str:webhook_id>/deliveries", webhooks.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
    # LiveKit webhook (incoming)
    path("livekit/webhook", rooms.LiveKitWebhookView.as_view(), name="livekit-webhook"),
    # Health, schema and docs
    path("health", core.HealthView.as_view(), name="health"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script), so the docs page needs no inline script (CSP).
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Anything else under /v1: a 404 problem, not the HTML page.
    re_path(r"", unknown_endpoint),
]
