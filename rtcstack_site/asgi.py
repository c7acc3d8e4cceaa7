"""ASGI entry point: WebSockets (Channels) in production; also answers HTTP for single-process set-ups."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtcstack_site.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs the app registry loaded above

application = ProtocolTypeRouter({"http": django_asgi_app})
