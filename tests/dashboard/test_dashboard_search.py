"""Transcript search: PostgreSQL full-text (stemming, phrases, exclusions, filters), its GIN index in the
query plan, the search page, and the plain fallback on SQLite (in a child process on its own database)."""

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from apps.dashboard.search import INDEX_NAME, parse_terms, search_segments
from apps.recordings.models import Recording
from apps.transcription.models import Segment, Transcription
from tests.conftest import support_staff_group
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db

STANDUP_START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SALES_START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
RETRO_START = datetime(2026, 2, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def corpus() -> dict[str, Segment]:
    """Two live sessions (one still running) and one post-call transcript of a recording."""
    standup = Transcription.objects.create(
        kind="live",
        status="active",
        room_name="standup",
        started_at=STANDUP_START,
        speakers={"alice": "Alice Liddell", "bob": "Bob Stone"},
    )
    sales = Transcription.objects.create(
        kind="live", status="stopped", room_name="sales", started_at=SALES_START, completed_at=SALES_START
    )
    recording = Recording.objects.create(room_name="retro", source="upload", status="completed", started_at=RETRO_START)
    retro = Transcription.objects.create(
        kind="post_call", status="completed", room_name="retro", recording=recording, started_at=SALES_START
    )
    rows = {
        "meetings": (standup, 1_000, "alice", "Alice Liddell", "We should schedule the meetings for next week."),
        "refund_order": (standup, 5_000, "bob", "Bob Stone", "The refund for order number 4521 went through."),
        "meeting": (standup, 9_000, "alice", "Alice Liddell", "Let me check the invoice before the meeting."),
        "sales": (sales, 2_000, "dan", "Dan Brown", "Refund requests are up, and order volume too."),
        "courier": (retro, 3_000, "", "", "The order was delayed by the courier."),
        "carol": (retro, 7_000, "carol", "Carol King", "Customers asked about refunds all week."),
    }
    return {
        key: Segment.objects.create(
            transcription=t, start_ms=ms, end_ms=ms + 900, speaker_id=sid, speaker=name, text=text, segment_key=key
        )
        for key, (t, ms, sid, name, text) in rows.items()
    }


def keys(**kwargs) -> set[str]:
    return {segment.segment_key for segment in search_segments(**kwargs)}


def test_search_runs_on_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_stemming_finds_other_forms_of_a_word(corpus) -> None:
    assert keys(q="meetings") == {"meetings", "meeting"}
    assert keys(q="refunded") == {"refund_order", "sales", "carol"}


def test_all_words_must_match(corpus) -> None:
    assert keys(q="refund order") == {"refund_order", "sales"}


def test_quoted_phrase(corpus) -> None:
    assert keys(q='"order number"') == {"refund_order"}
    assert keys(q='"number order"') == set()


def test_minus_excludes_a_word(corpus) -> None:
    assert keys(q="order -refund") == {"courier"}


def test_or_finds_either_word(corpus) -> None:
    assert keys(q="invoice or courier") == {"meeting", "courier"}


def test_live_and_post_call_transcripts_are_both_searched(corpus) -> None:
    found = list(search_segments("refund"))
    assert {s.transcription.kind for s in found} == {"live", "post_call"}


def test_filters_by_room_speaker_and_date(corpus) -> None:
    assert keys(q="refund", room="standup") == {"refund_order"}
    assert keys(q="refund", room="stand") == set()  # a room ID, not a substring
    assert keys(q="refund", speaker="carol") == {"carol"}  # identity
    assert keys(q="refund", speaker="KING") == {"carol"}  # display name, any case
    # Dates are the conversation's start: the recording's for a post-call transcript (1 Feb), not the job's.
    assert keys(q="refund", since=date(2026, 3, 11)) == {"sales"}
    assert keys(q="refund", until=date(2026, 2, 28)) == {"carol"}
    assert keys(q="refund", since=date(2026, 3, 10), until=date(2026, 3, 10)) == {"refund_order"}
    assert keys(room="standup") == {"meetings", "refund_order", "meeting"}  # filters alone, newest first


def test_no_match_and_stop_words_only_give_nothing(corpus) -> None:
    assert keys(q="zebra") == set()
    assert keys(q="the") == set()


def test_best_match_first_then_newest(corpus) -> None:
    Segment.objects.create(
        transcription=corpus["carol"].transcription, start_ms=9_000, end_ms=9_500, text="Refund, refund, refund!"
    )
    results = list(search_segments("refund"))
    assert results[0].text == "Refund, refund, refund!"
    assert all(results[i].rank >= results[i + 1].rank for i in range(len(results) - 1))


def test_query_terms_are_read_like_a_web_search() -> None:
    terms = parse_terms('refund "order number" -courier or invoice')
    assert [(t.text, t.exclude) for t in terms] == [
        ("refund", False),
        ("order number", False),
        ("courier", True),
        ("invoice", False),
    ]


# ---------- the page ----------


@pytest.fixture
def staff() -> Client:
    account = get_user_model().objects.create_user("sam", "sam@example.com", "pw-for-tests-only")
    account.groups.add(support_staff_group())
    client = Client()
    client.force_login(account)
    return client


def test_search_page_highlights_and_links_to_the_moment(corpus, staff: Client) -> None:
    html = staff.get("/dashboard/search/", {"q": "refunds"}).content.decode()
    assert "3 lines found" in html
    assert "<mark>refund</mark> for order number" in html
    assert "<mark>Refund</mark> requests" in html
    live_now, stopped, post_call = corpus["refund_order"], corpus["sales"], corpus["carol"]
    # A call still running opens on its live room page; finished ones on their stored transcript.
    assert f'href="/dashboard/rooms/standup/#seg-{live_now.pk}"' in html
    assert f'href="/dashboard/transcripts/{stopped.transcription_id}/#seg-{stopped.pk}"' in html
    assert f'href="/dashboard/transcripts/{post_call.transcription_id}/#seg-{post_call.pk}"' in html
    assert "Carol King" in html
    assert "Bob Stone" in html
    assert 'datetime="2026-03-10T09:00:05+00:00"' in html  # session start + the segment's offset


def test_search_page_escapes_transcript_text(corpus, staff: Client) -> None:
    Segment.objects.create(
        transcription=corpus["carol"].transcription, start_ms=1, end_ms=2, text='<img src=x onerror="a()"> refund & co'
    )
    html = staff.get("/dashboard/search/", {"q": "refund"}).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;a()&quot;&gt; <mark>refund</mark> &amp; co" in html


def test_search_page_paginates_and_keeps_the_query(corpus, staff: Client) -> None:
    transcription = corpus["carol"].transcription
    Segment.objects.bulk_create(
        Segment(transcription=transcription, start_ms=10_000 + n, end_ms=10_500 + n, text=f"Invoice {n} paid.")
        for n in range(60)
    )
    first = staff.get("/dashboard/search/", {"q": "invoice", "room": "retro"}).content.decode()
    assert "60 lines found · page 1 of 2" in first
    assert first.count('class="result"') == 50
    assert 'href="?q=invoice&amp;room=retro&amp;page=2"' in first
    second = staff.get("/dashboard/search/", {"q": "invoice", "room": "retro", "page": 2}).content.decode()
    assert second.count('class="result"') == 10


def test_search_page_reports_bad_dates_and_no_results(corpus, staff: Client) -> None:
    bad = staff.get("/dashboard/search/", {"q": "refund", "since": "2026-03-12", "until": "2026-03-01"})
    assert bad.status_code == 200
    assert "The end date is before the start date." in bad.content.decode()
    assert "No lines match" in staff.get("/dashboard/search/", {"q": "zebra"}).content.decode()


# ---------- the index ----------

VOCABULARY = [
    "account", "agent", "answer", "billing", "call", "card", "change", "check", "client", "connection", "customer",
    "delivery", "device", "email", "error", "issue", "line", "message", "minute", "network", "number", "option",
    "order", "password", "payment", "phone", "plan", "price", "problem", "question", "reason", "receipt", "record",
    "reply", "screen", "service", "setting", "signal", "status", "support", "ticket", "today", "update",
]  # fmt: skip


def test_the_full_text_index_answers_the_query() -> None:
    """With tens of thousands of segments, the planner reads matches from the GIN index, not every row."""
    transcription = Transcription.objects.create(
        kind="live", status="stopped", room_name="bulk", started_at=STANDUP_START
    )
    rng = random.Random(6)
    began = time.monotonic()
    Segment.objects.bulk_create(
        (
            Segment(
                transcription=transcription,
                start_ms=n * 1000,
                end_ms=n * 1000 + 900,
                speaker_id=f"user{n % 7}",
                speaker=f"User {n % 7}",
                text=" ".join(rng.choice(VOCABULARY) for _ in range(12)) + (" escalation" if n % 5000 == 0 else ""),
            )
            for n in range(30_000)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transcription_segment")
        cursor.execute("ANALYZE transcription_transcription")
        for kwargs in ({"q": "escalations"}, {"q": "escalation", "room": "bulk", "speaker": "user"}):
            sql, params = search_segments(**kwargs)[:50].query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert f"Bitmap Index Scan on {INDEX_NAME}" in plan, plan
    assert len(search_segments("escalations")) == 6
    assert time.monotonic() - began < 30


def test_the_index_is_on_the_searched_expression() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [INDEX_NAME])
        (definition,) = cursor.fetchone()
    assert "USING gin (to_tsvector('english'::regconfig, text))" in definition


# ---------- SQLite ----------

SQLITE_SCRIPT = textwrap.dedent(
    """
    import json
    from datetime import date, datetime, UTC
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from apps.dashboard.search import search_segments
    from apps.transcription.models import Segment, Transcription

    live = Transcription.objects.create(kind="live", status="active", room_name="standup",
                                        started_at=datetime(2026, 3, 10, 9, tzinfo=UTC))
    post = Transcription.objects.create(kind="post_call", status="completed", room_name="retro",
                                        started_at=datetime(2026, 2, 1, 9, tzinfo=UTC))
    for t, key, speaker, text in [
        (live, "a", "Alice", "The refund for order number 4521 went through."),
        (live, "b", "Bob", "Let me check the MEETING notes."),
        (post, "c", "Carol", "The order was delayed by the courier."),
        (post, "d", "Carol", "Refund requests are up, order volume too."),
    ]:
        Segment.objects.create(transcription=t, segment_key=key, speaker=speaker, start_ms=0, end_ms=1, text=text)

    def keys(**kwargs):
        return sorted(s.segment_key for s in search_segments(**kwargs))

    user = User.objects.create_user("sam", password="pw-for-tests-only")
    user.groups.add(Group.objects.get(name="Support staff"))
    client = Client()
    client.force_login(user)
    page = client.get("/dashboard/search/", {"q": "refund"})
    print(json.dumps({
        "vendor": __import__("django.db").db.connection.vendor,
        "words": keys(q="refund order"),
        "case": keys(q="meeting"),
        "phrase": keys(q='"order number"'),
        "exclude": keys(q="order -refund"),
        "room": keys(q="refund", room="retro"),
        "speaker": keys(q="order", speaker="car"),
        "since": keys(q="order", since=date(2026, 3, 1)),
        "none": keys(q="zebra"),
        "only_exclusions": keys(q="-refund"),
        "page_status": page.status_code,
        "page_marks": page.content.decode().count("<mark>"),
    }))
    """
)


@pytest.mark.slow  # a Python process on SQLite
def test_sqlite_falls_back_to_plain_matching(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DEBUG="1",
        RTCSTACK_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="rtcstack_site.settings",
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, "manage.py"]
    migrated = subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert "transcription.0006_segment_text_search_index... OK" in migrated.stdout
    run = subprocess.run([*manage, "shell", "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {
        "vendor": "sqlite",
        "words": ["a", "d"],
        "case": ["b"],
        "phrase": ["a"],
        "exclude": ["c"],
        "room": ["d"],
        "speaker": ["c", "d"],
        "since": ["a"],
        "none": [],
        "only_exclusions": [],
        "page_status": 200,
        "page_marks": 2,
    }
