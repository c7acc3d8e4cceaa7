"""limit/offset pagination for /v1 list endpoints: `{"total": n, "<items>": [...], "limit", "offset"}`."""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

from .serializers import InputSerializer

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint: one more is a database error, not an empty page


class PageQuerySerializer(InputSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


def paginate(
    request: Request,
    items: QuerySet | Sequence,
    key: str,
    serializer: type[serializers.Serializer],
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One page of `items` rendered by `serializer`, plus the total; bad limit/offset is a 400 problem."""
    query = PageQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    limit, offset = query.validated_data["limit"], query.validated_data["offset"]
    total = items.count() if isinstance(items, QuerySet) else len(items)
    page = items[offset : offset + limit]
    rendered = serializer(page, many=True, context=context or {}).data
    return {"total": total, key: rendered, "limit": limit, "offset": offset}


def page_schema(key: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The OpenAPI shape of what `paginate` returns for a list of `item`s."""
    return inline_serializer(
        f"{item.__name__.removesuffix('Serializer')}Page",
        {
            "total": serializers.IntegerField(),
            key: item(many=True),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
        },
    )
