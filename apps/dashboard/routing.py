from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/dashboard/rooms/", consumers.RoomListConsumer.as_asgi()),
    path("ws/dashboard/rooms/<path:room>/", consumers.RoomTranscriptConsumer.as_asgi()),  # room names may hold "/"
]
