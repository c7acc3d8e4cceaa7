from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.models import Scope

from .livekit import mint_token
from .serializers import TokenRequestSerializer, TokenResponseSerializer


class TokenView(APIView):
    """Issue a LiveKit access token for one participant of one room."""

    required_scope = Scope.TOKEN

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer}, tags=["tokens"])
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(mint_token(**serializer.to_token_args()).as_json())


class TokenRefreshView(TokenView):
    """Issue a fresh token for a participant whose token is about to expire (same body and response)."""
