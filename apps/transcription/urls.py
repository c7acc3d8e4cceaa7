from django.urls import path

from . import views

urlpatterns = [
    path("recordings/<str:recording_id>/transcribe", views.TranscribeRecordingView.as_view(), name="transcribe"),
    path("rooms/<str:room_id>/transcription", views.LiveTranscriptView.as_view(), name="live-transcript"),
    path("rooms/<str:room_id>/transcription/start", views.StartLiveView.as_view(), name="live-start"),
    path("rooms/<str:room_id>/transcription/stop", views.StopLiveView.as_view(), name="live-stop"),
    path("rooms/<str:room_id>/transcription/speakers", views.SpeakersView.as_view(), name="live-speakers"),
    path("transcriptions", views.TranscriptionsView.as_view(), name="transcriptions"),
    path("transcriptions/<str:transcription_id>", views.TranscriptionView.as_view(), name="transcription"),
]
