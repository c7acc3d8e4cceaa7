"""The support dashboard's pages: live rooms, a room's live transcript, a stored transcript, and search.

The pages are shells that the static JS fills from the WebSockets (`consumers.py`); what a page can know
without the socket (the room list, the session header, stored transcripts, search) is rendered here.
Every page needs a login and `transcription.view_live_transcript` (the "Support staff" group).
"""

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.utils import quote as admin_quote
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe

from apps.recordings.models import Recording
from apps.rooms.models import Room
from apps.transcription.models import Segment, Transcription

from . import events, search
from .consumers import PERMISSION
from .forms import SearchForm

LOGIN_URL = "dashboard:login"
PAGE_SIZE = 50
RECENT_TRANSCRIPTS = 10

View = Callable[..., HttpResponseBase]


def websocket_base() -> str:
    """Where the pages open their sockets (DASHBOARD_WEBSOCKET_URL, e.g. the ASGI server's own port); "" = here."""
    return settings.DASHBOARD_WEBSOCKET_URL.rstrip("/")


def support_staff(view: View) -> View:
    """Anonymous → the login page; signed in without the permission → a 403 page that says what to ask for."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.has_perm(PERMISSION):
            return render(request, "dashboard/403.html", status=403)
        return view(request, *args, **kwargs)

    return login_required(wrapped, login_url=LOGIN_URL)


def format_offset(ms: int) -> str:
    """Time from the start of the conversation: m:ss, or h:mm:ss past an hour."""
    minutes, seconds = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def ws_path(room: str) -> str:
    return f"/ws/dashboard/rooms/{url_quote(room, safe='')}/"


def room_url(room: str) -> str:
    return reverse("dashboard:room", args=[room])


def admin_links(request: HttpRequest, room: str, transcription: Transcription | None) -> list[dict[str, str]]:
    """Links to the admin records a user may open there (staff accounts with the matching view permission)."""
    user = request.user
    if not user.is_staff:
        return []
    links = []
    try:
        if user.has_perm("rooms.view_room"):
            record = Room.objects.filter(name=room).only("pk").first()
            url = (
                reverse("admin:rooms_room_change", args=[admin_quote(record.pk)])
                if record
                else reverse("admin:rooms_room_changelist") + "?" + urlencode({"q": room})
            )
            links.append({"label": "Room record", "url": url})
        if transcription and user.has_perm("transcription.view_transcription"):
            url = reverse("admin:transcription_transcription_change", args=[admin_quote(transcription.pk)])
            links.append({"label": "Transcription record", "url": url})
        if user.has_perm("recordings.view_recording"):
            count = Recording.objects.filter(room_name=room).count()
            url = reverse("admin:recordings_recording_changelist") + "?" + urlencode({"q": room})
            links.append({"label": f"Recordings ({count})", "url": url})
    except NoReverseMatch:  # an admin class not registered in this deployment
        pass
    return links


def transcript_url(segment: Segment) -> str:
    """Where a search hit is read in context: the live room page while the call runs, else the stored transcript."""
    transcription = segment.transcription
    anchor = f"#seg-{segment.pk}"
    if transcription.kind == Transcription.Kind.LIVE and transcription.status == Transcription.Status.ACTIVE:
        return room_url(transcription.room_name) + anchor
    return reverse("dashboard:transcript", args=[transcription.pk]) + anchor


def recent_transcripts() -> list[Transcription]:
    finished = [Transcription.Status.STOPPED, Transcription.Status.COMPLETED]
    return list(
        Transcription.objects.filter(status__in=finished)
        .annotate(when=Coalesce("recording__started_at", "started_at", "queued_at"), lines=Count("segments"))
        .order_by("-when")[:RECENT_TRANSCRIPTS]
    )


@support_staff
def index(request: HttpRequest) -> HttpResponse:
    active = Transcription.objects.filter(kind=Transcription.Kind.LIVE, status=Transcription.Status.ACTIVE)
    rooms = [events.room_summary(t, events.speaking_now(t.room_name)) for t in active.order_by("started_at")]
    for summary in rooms:
        summary["url"] = room_url(summary["roomId"])
    links = []
    if request.user.is_staff:
        for label, name, permission in [
            ("Transcriptions", "admin:transcription_transcription_changelist", "transcription.view_transcription"),
            ("Rooms", "admin:rooms_room_changelist", "rooms.view_room"),
            ("Recordings", "admin:recordings_recording_changelist", "recordings.view_recording"),
        ]:
            if request.user.has_perm(permission):
                links.append({"label": label, "url": reverse(name)})
    return render(
        request,
        "dashboard/index.html",
        {
            "rooms": rooms,
            "recent": recent_transcripts(),
            "admin_links": links,
            "ws_base": websocket_base(),
            "nav": "rooms",
        },
    )


@support_staff
def room(request: HttpRequest, room: str) -> HttpResponse:
    session = Transcription.objects.filter(kind=Transcription.Kind.LIVE, room_name=room).order_by("-started_at").first()
    return render(
        request,
        "dashboard/room.html",
        {
            "room": room,
            "session": session,
            "session_json": events.session_json(session) if session else None,
            "ws_path": ws_path(room),
            "ws_base": websocket_base(),
            "admin_links": admin_links(request, room, session),
            "nav": "rooms",
        },
    )


@support_staff
def transcript(request: HttpRequest, transcription_id: str) -> HttpResponse:
    transcription = get_object_or_404(Transcription.objects.select_related("recording"), pk=transcription_id)
    recording = transcription.recording
    start = (recording.started_at if recording else None) or transcription.started_at
    segments = list(transcription.segments.all())
    for segment in segments:
        segment.moment = start + timedelta(milliseconds=segment.start_ms) if start else None
        segment.offset = format_offset(segment.start_ms)
    live_now = transcription.kind == Transcription.Kind.LIVE and transcription.status == Transcription.Status.ACTIVE
    return render(
        request,
        "dashboard/transcript.html",
        {
            "transcription": transcription,
            "start": start,
            "segments": segments,
            "live_url": room_url(transcription.room_name) if live_now else None,
            "admin_links": admin_links(request, transcription.room_name, transcription)
            if transcription.room_name
            else [],
            "nav": "search",
        },
    )


@support_staff
def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    page = None
    results = []
    if form.has_criteria():
        data = form.cleaned_data
        matches = search.search_segments(
            data["q"], room=data["room"], speaker=data["speaker"], since=data["since"], until=data["until"]
        )
        page = Paginator(matches, PAGE_SIZE).get_page(request.GET.get("page"))
        for segment in page.object_list:
            results.append(
                {
                    "segment": segment,
                    "transcription": segment.transcription,
                    "html": mark_safe(search.highlight(segment, data["q"])),  # noqa: S308 - escaped in highlight()
                    "moment": search.segment_moment(segment),
                    "url": transcript_url(segment),
                }
            )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/search.html",
        {
            "form": form,
            "page": page,
            "results": results,
            "query_string": query.urlencode(),
            "rooms": search.recent_rooms(),
            "nav": "search",
        },
    )


class LoginView(auth_views.LoginView):
    """Any active account may sign in; the pages then check the permission (the admin's login wants is_staff)."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = False
    next_page = "dashboard:index"


login = LoginView.as_view()
logout = auth_views.LogoutView.as_view(next_page=LOGIN_URL)
