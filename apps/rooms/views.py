from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.models import Scope
from apps.core.livekit import mint_token, verify_webhook
from apps.core.pagination import PageQuerySerializer, page_schema, paginate
from apps.core.schema import problems
from apps.core.serializers import FlatRenderer

from . import events, services
from .serializers import (
    CreateIngressSerializer,
    CreateRoomSerializer,
    IngressDeletedSerializer,
    IngressSerializer,
    MuteResultSerializer,
    MuteSerializer,
    ParticipantRemovedSerializer,
    ParticipantSerializer,
    RoomClosedSerializer,
    RoomDetailSerializer,
    RoomSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
    WebhookAckSerializer,
)

render_token = FlatRenderer(TokenResponseSerializer)


class TokenView(APIView):
    """Issue a LiveKit access token for one participant of one room."""

    required_scope = Scope.TOKEN

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer}, tags=["tokens"])
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(render_token(mint_token(**serializer.to_token_args())))


class TokenRefreshView(TokenView):
    """Issue a fresh token for a participant whose token is about to expire (same body and response)."""


class RoomsView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(
        tags=["rooms"],
        summary="List active rooms",
        parameters=[PageQuerySerializer],
        responses=page_schema("rooms", RoomSerializer),
        operation_id="rooms_list",
    )
    def get(self, request: Request) -> Response:
        return Response(paginate(request, services.list_rooms(), "rooms", RoomSerializer))

    @extend_schema(
        request=CreateRoomSerializer, responses={201: RoomSerializer}, tags=["rooms"], summary="Create a room"
    )
    def post(self, request: Request) -> Response:
        serializer = CreateRoomSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        room = services.create_room(
            data["name"],
            max_participants=data.get("maxParticipants"),
            empty_timeout=data.get("emptyTimeout"),
            metadata=data.get("metadata", ""),
        )
        return Response(RoomSerializer(room).data, status=201)


class RoomView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(tags=["rooms"], summary="Room details and recent sessions", responses=RoomDetailSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(RoomDetailSerializer(services.active_room(room_id)).data)

    @extend_schema(
        tags=["rooms"], summary="Close a room, disconnecting everyone", responses={200: RoomClosedSerializer}
    )
    def delete(self, request: Request, room_id: str) -> Response:
        services.close_room(room_id)
        return Response(RoomClosedSerializer({"roomId": room_id, "closed": True}).data)


class ParticipantsView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(
        tags=["participants"],
        summary="List a room's participants",
        parameters=[PageQuerySerializer],
        responses=page_schema("participants", ParticipantSerializer),
    )
    def get(self, request: Request, room_id: str) -> Response:
        participants = services.list_participants(room_id)
        return Response(paginate(request, participants, "participants", ParticipantSerializer))


class ParticipantView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(
        tags=["participants"], summary="Remove (kick) a participant", responses={200: ParticipantRemovedSerializer}
    )
    def delete(self, request: Request, room_id: str, participant_id: str) -> Response:
        services.remove_participant(room_id, participant_id)
        removed = {"roomId": room_id, "participantId": participant_id, "removed": True}
        return Response(ParticipantRemovedSerializer(removed).data)


class MuteView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(
        request=MuteSerializer, responses=MuteResultSerializer, tags=["participants"], summary="Mute or unmute a track"
    )
    def post(self, request: Request, room_id: str, participant_id: str) -> Response:
        serializer = MuteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        track = services.mute_track(room_id, participant_id, data["trackSid"], data["muted"])
        result = {"roomId": room_id, "participantId": participant_id, "track": track}
        return Response(MuteResultSerializer(result).data)


class IngressesView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(
        tags=["ingress"],
        summary="List a room's ingresses",
        parameters=[PageQuerySerializer],
        responses=page_schema("ingresses", IngressSerializer),
    )
    def get(self, request: Request, room_id: str) -> Response:
        return Response(paginate(request, services.list_ingress(room_id), "ingresses", IngressSerializer))

    @extend_schema(
        request=CreateIngressSerializer,
        responses={201: IngressSerializer},
        tags=["ingress"],
        summary="Create an ingress",
    )
    def post(self, request: Request, room_id: str) -> Response:
        serializer = CreateIngressSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ingress = services.create_ingress(
            room_id,
            input_type=data["type"],
            name=data["name"],
            participant_identity=data["participantId"],
            participant_name=data["participantName"],
        )
        return Response(IngressSerializer(ingress).data, status=201)


class IngressView(APIView):
    required_scope = Scope.ROOMS
    calls_livekit = True

    @extend_schema(tags=["ingress"], summary="Delete an ingress", responses={200: IngressDeletedSerializer})
    def delete(self, request: Request, room_id: str, ingress_id: str) -> Response:
        services.delete_ingress(room_id, ingress_id)
        deleted = {"roomId": room_id, "ingressId": ingress_id, "deleted": True}
        return Response(IngressDeletedSerializer(deleted).data)


class LiveKitWebhookView(APIView):
    """Receives LiveKit's webhooks; authenticated by LiveKit's signed JWT, not by an API key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="livekit-webhook"'

    @extend_schema(
        tags=["livekit"],
        summary="LiveKit webhook receiver",
        request=None,
        responses={200: WebhookAckSerializer, **problems(400, 401, 413, 503)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        event = verify_webhook(request.body, request.headers.get("Authorization", ""))
        applied = events.apply(event)
        return Response(WebhookAckSerializer({"id": event.id, "event": event.event, "duplicate": not applied}).data)
