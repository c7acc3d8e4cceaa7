from django.urls import path

from . import views

urlpatterns = [
    path("recordings/<str:recording_id>/transcribe", views.TranscribeRecordingView.as_view(), name="transcribe"),
    path("transcriptions", views.TranscriptionsView.as_view(), name="transcriptions"),
    path("transcriptions/<str:transcription_id>", views.TranscriptionView.as_view(), name="transcription"),
]
