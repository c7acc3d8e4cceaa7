from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.models import Scope
from apps.core.pagination import PageQuerySerializer, page_schema, paginate
from apps.core.problems import Conflict, get_or_404
from apps.core.schema import problems

from . import services
from .models import WebhookEndpoint
from .serializers import (
    DeliveryQuerySerializer,
    DeliverySerializer,
    TestQueuedSerializer,
    WebhookCreateSerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
    WebhookWithSecretSerializer,
)

TAGS = ["webhooks"]


def get_endpoint(webhook_id: str) -> WebhookEndpoint:
    return get_or_404(WebhookEndpoint.objects, f"No webhook endpoint with ID {webhook_id}.", public_id=webhook_id)


class WebhookListView(APIView):
    """Subscribe a URL to events, or list the subscriptions."""

    required_scope = Scope.WEBHOOKS

    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook endpoints",
        parameters=[PageQuerySerializer],
        responses={200: page_schema("webhooks", WebhookSerializer)},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return Response(paginate(request, WebhookEndpoint.objects.all(), "webhooks", WebhookSerializer))

    @extend_schema(
        summary="Create a webhook endpoint; the response carries its signing secret, shown this once",
        request=WebhookCreateSerializer,
        responses={201: WebhookWithSecretSerializer},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        serializer = WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.create_endpoint(**serializer.validated_data)
        return Response(WebhookWithSecretSerializer(endpoint, context={"secret": secret}).data, status=201)


class WebhookDetailView(APIView):
    """One subscription: read, change (only the fields sent) or delete (its delivery log goes too)."""

    required_scope = Scope.WEBHOOKS

    @extend_schema(summary="Get a webhook endpoint", responses={200: WebhookSerializer}, tags=TAGS)
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(WebhookSerializer(get_endpoint(webhook_id)).data)

    @extend_schema(
        summary="Change a webhook endpoint (only the fields sent)",
        request=WebhookUpdateSerializer,
        responses={200: WebhookSerializer},
        tags=TAGS,
    )
    def patch(self, request: Request, webhook_id: str) -> Response:
        endpoint = get_endpoint(webhook_id)
        serializer = WebhookUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        for field, value in serializer.validated_data.items():
            setattr(endpoint, field, value)
        endpoint.save()
        return Response(WebhookSerializer(endpoint).data)

    @extend_schema(summary="Delete a webhook endpoint and its delivery log", responses={204: None}, tags=TAGS)
    def delete(self, request: Request, webhook_id: str) -> Response:
        get_endpoint(webhook_id).delete()
        return Response(status=204)


class WebhookRotateSecretView(APIView):
    """Issue a new signing secret (shown in this response only); the old one stops at once."""

    required_scope = Scope.WEBHOOKS

    @extend_schema(request=None, responses={200: WebhookWithSecretSerializer}, tags=TAGS)
    def post(self, request: Request, webhook_id: str) -> Response:
        endpoint = get_endpoint(webhook_id)
        secret = services.rotate_secret(endpoint)
        return Response(WebhookWithSecretSerializer(endpoint, context={"secret": secret}).data)


class WebhookTestView(APIView):
    """Send a `test` event to this endpoint only, whatever it subscribes to."""

    required_scope = Scope.WEBHOOKS

    @extend_schema(request=None, responses={202: TestQueuedSerializer, **problems(409)}, tags=TAGS)
    def post(self, request: Request, webhook_id: str) -> Response:
        endpoint = get_endpoint(webhook_id)
        if not endpoint.active:
            raise Conflict(
                f"Webhook endpoint {webhook_id} is inactive; activate it to send a test event.", kind="webhook-inactive"
            )
        delivery = services.send_test(endpoint)
        return Response(TestQueuedSerializer(delivery).data, status=202)


class WebhookDeliveriesView(APIView):
    """The delivery log of one endpoint, newest first; `?status=` filters."""

    required_scope = Scope.WEBHOOKS

    @extend_schema(
        parameters=[PageQuerySerializer, DeliveryQuerySerializer],
        responses={200: page_schema("deliveries", DeliverySerializer)},
        tags=TAGS,
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        endpoint = get_endpoint(webhook_id)
        query = DeliveryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = endpoint.deliveries.all()
        if "status" in query.validated_data:
            deliveries = deliveries.filter(status=query.validated_data["status"])
        return Response(paginate(request, deliveries, "deliveries", DeliverySerializer))
