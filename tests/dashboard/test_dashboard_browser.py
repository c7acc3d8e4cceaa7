"""The dashboard in a real browser: Debian's headless Chromium (driven by selenium through the system
chromedriver) against the ASGI app under uvicorn, with the live persister as its own process.

A support agent signs in, finds the room on the live list, opens it, reads the backlog, sees new lines,
a partial result and a speaking indicator arrive without reloading; the server is restarted under the
page, which reconnects by itself and shows every line exactly once; search finds a line and opens it in
its transcript; access taken away closes the socket with 1008 and the page says so instead of retrying;
an account without the permission gets 403. Screenshots go to test-artifacts/.
"""

import json
import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from apps.core.redis import get_redis
from apps.recordings.models import Recording
from apps.transcription import live
from apps.transcription.models import Segment, Transcription
from speech.livestore import SegmentEntry, client_db, events_channel, segments_key, session_key
from tests.conftest import support_staff_group
from tests.support.browser import CHROMEDRIVER, CHROMIUM, asgi_server, screenshot, wait
from tests.support.workers import live_persister

ROOM = "support-standup"
PASSWORD = "pw-for-tests-only"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="needs Debian's chromium and chromium-driver (installed by .ci/run)",
    ),
]

SPEAKERS = {"alice": "Alice Liddell", "bob": "Bob Stone", "carol": "Carol King"}
BACKLOG = [
    ("alice", "Morning everyone, let's start with the billing issue from yesterday."),
    ("bob", "Sure. The customer was charged twice for the same order, so I opened a refund."),
    ("bob", "Finance confirmed it this morning; it should show up within three days."),
    ("carol", "I'll email them the confirmation and close the ticket once it lands."),
]


def sign_in(driver: Any, base: str, username: str, next_path: str) -> None:
    driver.get(f"{base}{next_path}")
    wait(driver, lambda d: "/dashboard/login/" in d.current_url, what="the login redirect")
    driver.find_element(By.ID, "id_username").send_keys(username)
    password = driver.find_element(By.ID, "id_password")
    password.send_keys(PASSWORD)
    password.submit()
    wait(driver, lambda d: "/dashboard/login/" not in d.current_url, what="sign-in")


def lines(driver: Any) -> list[dict[str, Any]]:
    """The transcript as the page shows it: one entry per <li>, in order."""
    return driver.execute_script(
        """return Array.from(document.querySelectorAll('#transcript-lines > li')).map(li => ({
            id: li.dataset.segmentId, partial: li.classList.contains('partial'),
            speaker: li.querySelector('.line-speaker').textContent,
            text: li.querySelector('.line-text').textContent}));"""
    )


def connection_state(driver: Any) -> str:
    return driver.execute_script("return document.getElementById('connection').dataset.state;")


def entry(transcription: Transcription, n: int, speaker_id: str, text: str) -> SegmentEntry:
    return SegmentEntry(
        transcription_id=transcription.id,
        segment_id=f"{speaker_id}-{n}",
        speaker_id=speaker_id,
        speaker=speaker_id,
        start_ms=n * 6500,
        end_ms=n * 6500 + 5200,
        text=text,
        language="en",
    )


def append(*entries: SegmentEntry) -> None:
    """What the agent does with each final segment."""
    for item in entries:
        get_redis().xadd(segments_key(ROOM), item.to_fields())


def publish(event: dict[str, Any]) -> None:
    get_redis().publish(events_channel(ROOM, client_db(get_redis())), json.dumps(event))


def wait_stored(transcription: Transcription, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Segment.objects.filter(transcription=transcription).count() < count:
        assert time.monotonic() < deadline, "the persister did not store the segment"
        time.sleep(0.05)


def support_user(username: str, *, allowed: bool) -> Any:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if allowed:
        user.groups.add(support_staff_group())
    return user


def live_session() -> Transcription:
    """A running live transcription with a backlog, set up as `live.start` leaves it (minus the dispatch)."""
    transcription = Transcription.objects.create(
        kind="live",
        status="active",
        room_name=ROOM,
        language="en",
        speakers=SPEAKERS,
        partial_results=True,
        started_at=timezone.now() - timedelta(minutes=4),
    )
    client = get_redis()
    client.hset(session_key(ROOM), mapping=live.session_record(transcription).to_hash())
    live.open_stream(client, ROOM)
    live.store_entries(entry(transcription, n, speaker, text) for n, (speaker, text) in enumerate(BACKLOG))
    return transcription


def yesterdays_call() -> Transcription:
    """A finished post-call transcript, for the recent list and search."""
    recording = Recording.objects.create(
        room_name="billing-followup",
        source="egress",
        status="completed",
        started_at=timezone.now() - timedelta(days=1, hours=2),
    )
    transcription = Transcription.objects.create(
        kind="post_call", status="completed", room_name="billing-followup", recording=recording, language="en"
    )
    Segment.objects.bulk_create(
        Segment(transcription=transcription, start_ms=ms, end_ms=ms + 4000, speaker_id=sid, speaker=name, text=text)
        for ms, sid, name, text in [
            (0, "dana", "Dana Cruz", "Thanks for calling back about the double charge."),
            (5200, "", "", "Yes, I still don't see the refund on my card."),
            (11800, "dana", "Dana Cruz", "It was issued this morning; refunds take up to three business days."),
        ]
    )
    return transcription


def test_support_staff_follow_a_live_call_and_find_it_again(tmp_path: Path, browser: Any, settings: Any) -> None:
    # The server runs the project's settings: store passwords with a hasher it knows (not the tests' MD5).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    transcription = live_session()
    past = yesterdays_call()
    sam = support_user("sam", allowed=True)
    support_user("nina", allowed=False)
    driver = browser

    with live_persister("browser-test"), asgi_server(tmp_path) as server:
        base = server.url

        # The live list: the room is there; open it from the list.
        sign_in(driver, base, "sam", "/dashboard/")
        wait(driver, lambda d: connection_state(d) == "live", what="the room list socket")
        row = f"#room-rows tr[data-room-id='{ROOM}']"  # its cells are refilled on updates: look them up each time
        assert driver.find_element(By.CSS_SELECTOR, row + " td.num").text == "4"
        publish({"type": "speaking", "speakerId": "carol", "speaker": "Carol King"})
        wait(
            driver,
            lambda d: "Carol King" in d.find_element(By.CSS_SELECTOR, row + " .speaking-cell").text,
            what="the room list's speaking column",
        )
        screenshot(driver, "dashboard-rooms.png")
        publish({"type": "speaking_stopped", "speakerId": "carol", "speaker": "Carol King"})
        driver.find_element(By.CSS_SELECTOR, row + " a.room-link").click()

        # The backlog, with display names from the session's speakers map.
        wait(driver, lambda d: len(lines(d)) == 4, what="the backlog")
        assert [(line["speaker"], line["text"]) for line in lines(driver)] == [
            (SPEAKERS[speaker], text) for speaker, text in BACKLOG
        ]
        assert driver.find_element(By.ID, "session-status").text == "Live"
        wait(driver, lambda d: connection_state(d) == "live", what="the room socket")

        # A new final segment from the agent appears without a reload.
        page_id = driver.execute_script("return (window.__pageId = window.__pageId || Math.random());")
        append(entry(transcription, 4, "alice", "Great. Anything blocking the release today?"))
        wait(driver, lambda d: any(line["id"] == "alice-4" for line in lines(d)), what="the new line")

        # Speaking indicator, then a partial result replaced in place by its final segment.
        publish({"type": "speaking", "speakerId": "bob", "speaker": "Bob Stone"})
        wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, ".participant.is-speaking[data-speaker-id='bob']"),
            what="bob's speaking indicator",
        )
        publish({"type": "transcript_partial", "speakerId": "bob", "speaker": "Bob Stone",
                 "text": "Only the payment gateway", "startMs": 5 * 6500, "segmentId": "bob-5"})  # fmt: skip
        wait(driver, lambda d: any(li["id"] == "bob-5" and li["partial"] for li in lines(d)), what="the partial")
        publish({"type": "someday_new_kind", "anything": 1})  # ignored by the page
        append(entry(transcription, 5, "bob", "Only the payment gateway update, which we test after lunch."))
        wait(driver, lambda d: any(li["id"] == "bob-5" and not li["partial"] for li in lines(d)), what="final")
        publish({"type": "speaking_stopped", "speakerId": "bob", "speaker": "Bob Stone"})
        publish({"type": "speaking", "speakerId": "alice", "speaker": "Alice Liddell"})
        wait(
            driver,
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, ".participant.is-speaking[data-speaker-id='alice']")
                and not d.find_elements(By.CSS_SELECTOR, ".participant.is-speaking[data-speaker-id='bob']")
            ),
            what="the speaking indicators to swap",
        )

        # The server goes away under the page; a line is said meanwhile; the page reconnects by itself.
        def while_down() -> None:
            wait(driver, lambda d: connection_state(d) == "reconnecting", what="the page to notice")
            screenshot(driver, "dashboard-reconnecting.png")
            append(entry(transcription, 6, "alice", "Okay, let's check in again at three."))
            wait_stored(transcription, 7)

        server.restart(while_down)
        wait(driver, lambda d: any(li["id"] == "alice-6" for li in lines(d)), timeout=15, what="the reconnect")
        wait(driver, lambda d: connection_state(d) == "live", what="live again")
        shown = lines(driver)
        stored = list(transcription.segments.order_by("start_ms").values_list("segment_key", flat=True))
        assert Counter(line["id"] for line in shown) == Counter(stored)  # every line, exactly once
        assert [line["id"] for line in shown] == stored
        assert not any(line["partial"] for line in shown)
        assert driver.execute_script("return window.__pageId;") == page_id  # no reload happened
        assert "Alice Liddell" in driver.find_element(By.CSS_SELECTOR, ".participant.is-speaking").text

        # An operator renames a participant: the lines already shown are relabelled in place.
        live.update_speakers(transcription, {"bob": "Robert Stone"})
        wait(
            driver,
            lambda d: [li["speaker"] for li in lines(d) if li["id"].startswith("bob-")] == ["Robert Stone"] * 3,
            what="the renamed speaker",
        )
        assert "Robert Stone" in driver.find_element(By.CSS_SELECTOR, ".participant[data-speaker-id='bob']").text

        # Jump to live: scrolling up pauses the auto-scroll; End jumps back.
        driver.set_window_size(1280, 480)
        at_live_edge = "const s = document.getElementById('transcript'); return s.scrollHeight > s.clientHeight && "
        at_live_edge += "s.scrollHeight - s.scrollTop - s.clientHeight < 2;"
        wait(driver, lambda d: d.execute_script(at_live_edge), what="a following page to stay at the live edge")
        driver.execute_script("document.getElementById('transcript').scrollTop = 0;")
        jump = driver.find_element(By.ID, "jump-live")
        wait(driver, lambda d: jump.is_displayed(), what="the jump-to-live button")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
        wait(driver, lambda d: not jump.is_displayed(), what="jump to live")
        driver.set_window_size(1280, 860)
        time.sleep(1.8)  # the newest line's highlight fades
        screenshot(driver, "dashboard-room.png")
        driver.set_window_size(390, 844)
        time.sleep(0.3)
        screenshot(driver, "dashboard-room-phone.png")
        driver.set_window_size(1280, 860)

        # Search from the keyboard, then open the hit in its transcript at that line.
        driver.find_element(By.TAG_NAME, "body").send_keys("/")
        field = driver.switch_to.active_element
        assert field.get_attribute("id") == "global-search"
        field.send_keys("refunds", Keys.ENTER)
        wait(driver, lambda d: "/dashboard/search/" in d.current_url, what="the search page")
        hits = driver.find_elements(By.CSS_SELECTOR, ".result-link")
        assert len(hits) == 3  # the live call's line and two of yesterday's post-call transcript
        screenshot(driver, "dashboard-search.png")
        past_hit = next(hit for hit in hits if "billing-followup" in hit.text)
        past_url = past_hit.get_attribute("href")
        assert f"/dashboard/transcripts/{past.pk}/#seg-" in past_url
        hit = next(hit for hit in hits if ROOM in hit.text)
        assert hit.find_element(By.TAG_NAME, "mark").text == "refund"
        hit.click()
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".line.is-target"), what="the search hit's line")
        target = driver.find_element(By.CSS_SELECTOR, ".line.is-target")
        assert target.get_attribute("data-segment-id") == "bob-1"
        assert target.is_displayed()
        driver.get(past_url)  # a finished call: its stored transcript, at that line
        line = driver.find_element(By.CSS_SELECTOR, ".line:target")
        assert "refund" in line.text
        screenshot(driver, "dashboard-transcript.png")
        driver.back()
        wait(driver, lambda d: connection_state(d) == "live", what="the room page again")

        # Access taken away: the socket is refused with 1008 and the page stops retrying.
        sam.groups.clear()
        server.restart()
        retry = driver.find_element(By.ID, "connection-retry")  # shown while reconnecting: skips the backoff wait
        if retry.is_displayed():
            retry.click()
        wait(driver, lambda d: connection_state(d) == "denied", timeout=15, what="the refusal")
        assert not retry.is_displayed()
        assert "You don't have access" in driver.find_element(By.ID, "transcript-empty").text
        assert lines(driver) == []  # what was shown is taken down too
        time.sleep(1.5)
        assert connection_state(driver) == "denied"

        console = [entry["message"] for entry in driver.get_log("browser")]
        assert not [message for message in console if "Content Security Policy" in message], console

        # Someone without the permission: 403 page, and the socket closes with the policy code.
        driver.delete_all_cookies()
        sign_in(driver, base, "nina", f"/dashboard/rooms/{ROOM}/")
        assert "You don't have access" in driver.find_element(By.TAG_NAME, "h1").text
        screenshot(driver, "dashboard-403.png")
        code = driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const url = location.origin.replace('http', 'ws') + '/ws/dashboard/rooms/' + arguments[0] + '/';
            new WebSocket(url).onclose = (event) => done(event.code);""",
            ROOM,
        )
        assert code == 1008
