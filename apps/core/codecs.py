"""JSON in and out through orjson, with content negotiation that does no work when there is one renderer."""

from datetime import UTC, datetime
from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


class ORJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc


class SingleRendererNegotiation(DefaultContentNegotiation):
    """The API speaks JSON only, so skip Accept-header parsing unless a view offers a choice."""

    def select_renderer(self, request: Any, renderers: list, format_suffix: str | None = None) -> tuple:
        if len(renderers) == 1:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


def iso_utc(moment: datetime | None) -> str | None:
    """Timestamps on the wire: ISO 8601 in UTC with a `Z`, or null."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None
