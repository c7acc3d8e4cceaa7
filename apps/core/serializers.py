from datetime import UTC, datetime
from typing import Any

from django.utils.functional import cached_property
from rest_framework import serializers

from .codecs import iso_utc


class InputSerializer(serializers.Serializer):
    """A flat, write-only request serializer whose fields are built and bound once per class.

    DRF deep-copies every declared field for each serializer instance; on the token endpoint that
    copying was the largest single cost. Fields of a flat input serializer keep no per-request
    state (errors and values live on the serializer), so one bound set can serve every instance.
    Partial validation is refused because the shared fields are bound to a non-partial root.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("partial") or kwargs.get("many"):
            raise TypeError(f"{type(self).__name__} supports neither partial nor many")
        super().__init__(*args, **kwargs)

    @cached_property
    def fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = super().fields
            cls._shared_fields = shared
        return shared


class UtcDateTimeField(serializers.DateTimeField):
    """A timestamp on the wire exactly as `iso_utc` writes it (UTC with a `Z`), whatever TIME_ZONE says."""

    def to_representation(self, value: datetime) -> str | None:
        return iso_utc(value)


class UnixSecondsField(UtcDateTimeField):
    """LiveKit's Unix seconds as a timestamp; LiveKit sends 0 for unknown, which is null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: int) -> str | None:
        return iso_utc(datetime.fromtimestamp(value, tz=UTC)) if value else None


class BlankAsNullCharField(serializers.CharField):
    """Text that is stored as "" when absent and sent as null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


class FlatRenderer:
    """Renders objects with a flat output serializer's fields, bound once: for hot paths (the token endpoint).

    A serializer instance deep-copies its declared fields and builds a ReturnDict, which costs more than
    minting the token; this renders with the same fields (the serializer stays the shape's one source and its
    schema), without nested serializers or context, null for a None attribute as DRF does.
    """

    def __init__(self, serializer_class: type[serializers.Serializer]) -> None:
        fields = serializer_class().fields
        if any(isinstance(field, serializers.BaseSerializer) for field in fields.values()):
            raise TypeError(f"{serializer_class.__name__} is not flat")
        self.fields = list(fields.items())

    def __call__(self, instance: Any) -> dict[str, Any]:
        body = {}
        for name, field in self.fields:
            value = field.get_attribute(instance)
            body[name] = None if value is None else field.to_representation(value)
        return body
