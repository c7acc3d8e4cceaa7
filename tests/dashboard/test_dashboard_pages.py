"""The dashboard's pages through Django's test client: access rules, what each page renders, escaping."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from apps.recordings.models import Recording
from apps.rooms.models import Room
from apps.transcription import live
from apps.transcription.models import Segment, Transcription
from tests.conftest import policy_of, support_staff_group
from tests.support.dashboard import segment_entry
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db

PAGES = ["/dashboard/", "/dashboard/rooms/standup/", "/dashboard/search/?q=hello"]


def user(name: str = "sam", *, support_staff: bool = True, **fields) -> object:
    account = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-for-tests-only", **fields)
    if support_staff:
        account.groups.add(support_staff_group())
    return account


def client_for(account: object) -> Client:
    client = Client()
    client.force_login(account)
    return client


@pytest.fixture
def staff() -> Client:
    return client_for(user(is_staff=True))


def live_session(room: str = "standup", **fields) -> Transcription:
    defaults = {
        "status": "active",
        "speakers": {"alice": "Alice Liddell"},
        "language": "en",
        "started_at": timezone.now(),
    }
    return Transcription.objects.create(kind="live", room_name=room, **{**defaults, **fields})


def test_the_support_staff_group_holds_the_permission() -> None:
    group = support_staff_group()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_live_transcript", "view_transcription", "view_segment"} <= codenames


@pytest.mark.parametrize("path", [*PAGES, "/dashboard/transcripts/tr_x/"])
def test_anonymous_visitors_are_sent_to_the_login_page(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/?next=")


@pytest.mark.parametrize("path", PAGES)
def test_staff_without_the_permission_get_a_friendly_403(path: str) -> None:
    response = client_for(user("nina", support_staff=False, is_staff=True)).get(path)
    assert response.status_code == 403
    assert "text/html" in response["Content-Type"]
    assert "Support staff" in response.content.decode()
    assert "Sign in as someone else" in response.content.decode()


def test_the_readme_command_grants_access() -> None:
    """The README's shell one-liner for operators, run as written."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r'manage\.py shell -c "(.*?)"\n', readme, re.DOTALL).group(1).replace("\\\n", "")
    account = user(support_staff=False)
    assert client_for(account).get("/dashboard/").status_code == 403
    exec(command, {})  # noqa: S102 - the documented command, on the test database
    assert client_for(account).get("/dashboard/").status_code == 200


def test_the_permission_alone_is_enough_and_superusers_have_it() -> None:
    plain = user("pat", support_staff=False)
    plain.user_permissions.add(Permission.objects.get(codename="view_live_transcript"))
    assert client_for(plain).get("/dashboard/").status_code == 200
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    assert client_for(admin).get("/dashboard/").status_code == 200


def test_login_form_signs_in_and_returns_to_the_page() -> None:
    user()
    client = Client(enforce_csrf_checks=True)
    page = client.get("/dashboard/login/?next=/dashboard/rooms/standup/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    wrong = client.post(
        "/dashboard/login/",
        {"username": "sam", "password": "nope", "next": "/dashboard/", "csrfmiddlewaretoken": token},
    )
    assert wrong.status_code == 200
    assert "correct username and password" in wrong.content.decode()
    response = client.post(
        "/dashboard/login/",
        {
            "username": "sam",
            "password": "pw-for-tests-only",
            "next": "/dashboard/rooms/standup/",
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/rooms/standup/"
    assert client.get("/dashboard/rooms/standup/").status_code == 200


def test_sign_out_ends_the_session(staff: Client) -> None:
    response = staff.post("/dashboard/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/login/"
    assert staff.get("/dashboard/").status_code == 302


def test_pages_send_a_strict_content_security_policy(staff: Client) -> None:
    policy = staff.get("/dashboard/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "connect-src 'self' ws://testserver" in policy
    html = staff.get("/dashboard/rooms/standup/").content.decode()
    assert not re.search(r"<script>(?!\s*$)", html)  # no inline scripts
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_pages_open_their_sockets_where_dashboard_websocket_url_says(staff: Client, settings) -> None:
    assert 'data-ws-base=""' in staff.get("/dashboard/").content.decode()  # unset: the page's own origin
    settings.DASHBOARD_WEBSOCKET_URL = "ws://127.0.0.1:8001/"
    for path in ("/dashboard/", "/dashboard/rooms/standup/"):
        response = staff.get(path)
        assert 'data-ws-base="ws://127.0.0.1:8001"' in response.content.decode()
        assert policy_of(response)["connect-src"] == ["'self'", "ws://testserver", "ws://127.0.0.1:8001"]


def test_static_files_exist() -> None:
    for name in ("dashboard.css", "dashboard.js", "rooms.js", "room.js"):
        assert finders.find(f"dashboard/{name}"), name


def test_index_lists_active_rooms_with_links(staff: Client) -> None:
    live_session()
    live_session("other", status="stopped")
    Transcription.objects.create(kind="live", status="active", room_name="<b>odd</b>", started_at=timezone.now())
    html = staff.get("/dashboard/").content.decode()
    assert 'href="/dashboard/rooms/standup/"' in html
    assert 'data-ws-path="/ws/dashboard/rooms/"' in html
    assert 'data-room-id="other"' not in html
    assert "&lt;b&gt;odd&lt;/b&gt;" in html
    assert "<b>odd</b>" not in html
    assert "/admin/transcription/transcription/" in html  # staff with the group's view permission


def test_index_shows_recent_finished_transcripts(staff: Client) -> None:
    finished = live_session("retro", status="stopped", completed_at=timezone.now())
    html = staff.get("/dashboard/").content.decode()
    assert f'href="/dashboard/transcripts/{finished.pk}/"' in html


def test_room_page_carries_the_socket_path_session_and_admin_links() -> None:
    session = live_session()
    Room.objects.create(name="standup")
    Recording.objects.create(room_name="standup", source="upload", status="completed")
    account = user(is_staff=True)
    for codename in ("view_room", "view_recording"):
        account.user_permissions.add(Permission.objects.get(codename=codename))
    html = client_for(account).get("/dashboard/rooms/standup/").content.decode()
    assert 'data-ws-path="/ws/dashboard/rooms/standup/"' in html
    assert f'"transcriptionId": "{session.pk}"' in html  # the json_script session
    room = Room.objects.get(name="standup")
    assert f'href="/admin/rooms/room/{room.pk}/change/"' in html
    assert f'href="/admin/transcription/transcription/{quote(session.pk)}/change/"' in html
    assert 'href="/admin/recordings/recording/?q=standup"' in html
    assert "Recordings (1)" in html
    assert 'aria-live="polite"' in html


def test_room_page_without_admin_rights_has_no_admin_links() -> None:
    live_session()
    html = client_for(user(is_staff=False)).get("/dashboard/rooms/standup/").content.decode()
    assert "/admin/" not in html


def test_room_names_are_escaped_everywhere(staff: Client) -> None:
    name = "x\"'<img src=x>"
    live_session(name)
    for path in ("/dashboard/", "/dashboard/rooms/x%22%27%3Cimg%20src=x%3E/"):
        response = staff.get(path)
        assert response.status_code == 200
        html = response.content.decode()
        assert "<img src=x>" not in html
        assert "&lt;img src=x&gt;" in html


def test_stored_transcript_page_lists_lines_with_anchors_and_escapes_text(staff: Client) -> None:
    session = live_session(status="stopped", completed_at=timezone.now())
    live.store_entries([segment_entry(session, 0), segment_entry(session, 1, "bob")])
    Segment.objects.create(transcription=session, start_ms=65_000, end_ms=66_000, text="<script>x()</script>")
    segments = list(session.segments.all())
    html = staff.get(f"/dashboard/transcripts/{session.pk}/").content.decode()
    for segment in segments:
        assert f'id="seg-{segment.pk}"' in html
    assert "Alice Liddell" in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "1:05" in html  # offset of the third line
    assert staff.get("/dashboard/transcripts/tr_missing/").status_code == 404


def test_recent_post_call_transcripts_are_dated_by_their_recording(staff: Client) -> None:
    recording = Recording.objects.create(
        room_name="retro", source="upload", status="completed", started_at=datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    )
    Transcription.objects.create(
        kind="post_call", status="completed", room_name="retro", recording=recording, started_at=timezone.now()
    )
    assert 'datetime="2026-03-04T10:00:00+00:00"' in staff.get("/dashboard/").content.decode()


def test_post_call_transcript_times_come_from_the_recording() -> None:
    started = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    recording = Recording.objects.create(room_name="retro", source="upload", status="completed", started_at=started)
    transcription = Transcription.objects.create(
        kind="post_call", status="completed", room_name="retro", recording=recording
    )
    Segment.objects.create(transcription=transcription, start_ms=90_000, end_ms=91_000, text="Hello there.")
    html = client_for(user()).get(f"/dashboard/transcripts/{transcription.pk}/").content.decode()
    assert 'datetime="2026-03-04T10:01:30+00:00"' in html
    assert "Unknown speaker" in html
