from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/<path:room>/", views.room, name="room"),
    path("transcripts/<str:transcription_id>/", views.transcript, name="transcript"),
    path("search/", views.search_page, name="search"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
]
