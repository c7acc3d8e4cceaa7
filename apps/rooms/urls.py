from django.urls import path

from . import views

urlpatterns = [
    path("token", views.TokenView.as_view(), name="token"),
    path("token/refresh", views.TokenRefreshView.as_view(), name="token-refresh"),
    path("rooms", views.RoomsView.as_view(), name="rooms"),
    path("rooms/<str:room_id>", views.RoomView.as_view(), name="room"),
    path("rooms/<str:room_id>/participants", views.ParticipantsView.as_view(), name="participants"),
    path("rooms/<str:room_id>/participants/<str:participant_id>", views.ParticipantView.as_view(), name="participant"),
    path("rooms/<str:room_id>/participants/<str:participant_id>/mute", views.MuteView.as_view(), name="mute"),
    path("rooms/<str:room_id>/ingress", views.IngressesView.as_view(), name="ingresses"),
    path("rooms/<str:room_id>/ingress/<str:ingress_id>", views.IngressView.as_view(), name="ingress"),
    path("livekit/webhook", views.LiveKitWebhookView.as_view(), name="livekit-webhook"),
]
