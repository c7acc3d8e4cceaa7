from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import health
from .version import __version__

HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded", "error"]),
        "version": serializers.CharField(),
        "checks": serializers.DictField(child=serializers.CharField()),
        "capabilities": serializers.DictField(child=serializers.BooleanField()),
    },
)


class HealthView(APIView):
    """Liveness and dependency status; no authentication. 503 when the database or Redis is down."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["health"],
        auth=[],
        responses={(200, "application/json"): HEALTH, (503, "application/json"): HEALTH},
    )
    def get(self, request: Request) -> Response:
        body, healthy = health.report()
        return Response({"version": __version__, **body}, status=200 if healthy else 503)
