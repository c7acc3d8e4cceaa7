from django.urls import path

from . import views

urlpatterns = [
    path("rooms/<str:room_id>/recording", views.RoomRecordingView.as_view(), name="room-recording"),
    path("rooms/<str:room_id>/recording/start", views.StartRecordingView.as_view(), name="recording-start"),
    path("rooms/<str:room_id>/recording/stop", views.StopRecordingView.as_view(), name="recording-stop"),
    path("recordings", views.RecordingsView.as_view(), name="recordings"),
    path("recordings/<str:recording_id>", views.RecordingView.as_view(), name="recording"),
]
