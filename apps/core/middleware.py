"""Django's site middleware, skipped for the signed /v1 API.

Sessions, authentication, messages and slash-appending serve the admin and the pages; /v1 requests
authenticate by signature and need none of them. Skipping them there measured about +10% requests/s
on the token endpoint (bench/token_bench).
"""

from collections.abc import Callable

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware

from .problems import API_PREFIX


class OutsideApiMixin:
    get_response: Callable[[HttpRequest], HttpResponseBase]

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SiteSessionMiddleware(OutsideApiMixin, SessionMiddleware):
    pass


class SiteCommonMiddleware(OutsideApiMixin, CommonMiddleware):
    pass


class SiteAuthenticationMiddleware(OutsideApiMixin, AuthenticationMiddleware):
    pass


class SiteMessageMiddleware(OutsideApiMixin, MessageMiddleware):
    pass
