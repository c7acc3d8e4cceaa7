from typing import Any

from django.utils.functional import cached_property
from rest_framework import serializers


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
