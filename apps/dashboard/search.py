"""Finding past (and ongoing) conversations by their words: live and post-call segments alike.

On PostgreSQL the words are matched with full-text search (`websearch_to_tsquery`, English stemming)
against `to_tsvector('english', text)`, the exact expression of the GIN index that migration
dashboard/0002 creates, so the planner answers from the index even with millions of segments.
On SQLite (the embedded set-up) a plain fallback matches each word as a case-insensitive substring.

Dates filter on the day the conversation started (UTC): the recording's start for a post-call
transcript, the session's start for a live one; the segment's own offset is not taken into account.
"""

import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVectorField
from django.db import connection
from django.db.models import Func, Q, QuerySet
from django.db.models.functions import Coalesce

from apps.transcription.models import Segment, Transcription

CONFIG = "english"
INDEX_NAME = "transcription_segment_text_fts"  # created by dashboard/0002 (PostgreSQL only)
# ts_headline marks matches with these (private-use characters); the text is escaped, then they become <mark>.
_START, _STOP = "\ue000", "\ue001"
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class EnglishDocument(Func):
    """`to_tsvector('english'::regconfig, text)`, written exactly as the index is, so the index matches."""

    function = "to_tsvector"
    template = f"%(function)s('{CONFIG}'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class Term:
    text: str
    exclude: bool = False


def parse_terms(q: str) -> list[Term]:
    """Words, "quoted phrases" and -exclusions, as web search engines (and websearch_to_tsquery) read them."""
    terms = []
    for match in _TOKEN.finditer(q):
        minus, phrase, word = match.groups()
        if phrase is not None:
            if phrase.strip():
                terms.append(Term(phrase.strip(), exclude=bool(minus)))
        elif word.startswith("-") and len(word) > 1:
            terms.append(Term(word[1:], exclude=True))
        elif word.lower() != "or" and word != "-":
            terms.append(Term(word))
    return terms


def conversation_start() -> Coalesce:
    """When the conversation began: the recording's start (post-call), else the session's start, else queued."""
    return Coalesce("transcription__recording__started_at", "transcription__started_at", "transcription__queued_at")


def _day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC) if until else None
    return start, end


def search_segments(
    q: str = "",
    room: str | None = None,
    speaker: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Segment]:
    """Segments matching the words and filters, best match first (then newest); `moment` and `headline` added.

    `room` is a room ID (exact); `speaker` matches a display name or participant identity (substring);
    `since`/`until` are inclusive UTC days of the conversation's start. With no words, the newest matches.
    """
    segments = Segment.objects.select_related("transcription", "transcription__recording").annotate(
        moment=conversation_start()
    )
    if room:
        segments = segments.filter(transcription__room_name=room)
    if speaker:
        segments = segments.filter(Q(speaker__icontains=speaker) | Q(speaker_id__icontains=speaker))
    start, end = _day_bounds(since, until)
    if start:
        segments = segments.filter(moment__gte=start)
    if end:
        segments = segments.filter(moment__lt=end)
    newest = ["-moment", "-start_ms", "-pk"]
    q = q.strip()
    if not q:
        return segments.order_by(*newest)
    if is_postgresql():
        query = SearchQuery(q, config=CONFIG, search_type="websearch")
        return (
            segments.annotate(document=EnglishDocument("text"))
            .filter(document=query)
            .annotate(
                rank=SearchRank(EnglishDocument("text"), query),
                headline=SearchHeadline(
                    "text", query, config=CONFIG, start_sel=_START, stop_sel=_STOP, highlight_all=True
                ),
            )
            .order_by("-rank", *newest)
        )
    terms = parse_terms(q)
    if not any(not term.exclude for term in terms):
        return segments.none()
    for term in terms:
        condition = Q(text__icontains=term.text)
        segments = segments.exclude(condition) if term.exclude else segments.filter(condition)
    return segments.order_by(*newest)


def highlight(segment: Segment, q: str) -> str:
    """The segment's text as safe HTML with the matched words in <mark> (PostgreSQL's own headline if present)."""
    headline = getattr(segment, "headline", None)
    if headline:
        escaped = html.escape(headline)
        return escaped.replace(html.escape(_START), "<mark>").replace(html.escape(_STOP), "</mark>")
    words = [re.escape(term.text) for term in parse_terms(q) if not term.exclude]
    if not words:
        return html.escape(segment.text)
    pattern = re.compile("|".join(sorted(words, key=len, reverse=True)), re.IGNORECASE)
    parts, last = [], 0
    for match in pattern.finditer(segment.text):
        parts.append(html.escape(segment.text[last : match.start()]))
        parts.append(f"<mark>{html.escape(match.group())}</mark>")
        last = match.end()
    parts.append(html.escape(segment.text[last:]))
    return "".join(parts)


def segment_moment(segment: Segment) -> datetime | None:
    """The wall-clock moment a segment was said, when the conversation's start is known."""
    moment = getattr(segment, "moment", None)
    if moment is None:
        return None
    return moment + timedelta(milliseconds=segment.start_ms)


def recent_rooms(limit: int = 200) -> list[str]:
    """Room IDs with transcripts, newest first (suggestions for the room filter)."""
    names: dict[str, Any] = {}
    for name in (
        Transcription.objects.exclude(room_name="").order_by("-queued_at").values_list("room_name", flat=True)[:1000]
    ):
        names.setdefault(name, None)
        if len(names) >= limit:
            break
    return list(names)
