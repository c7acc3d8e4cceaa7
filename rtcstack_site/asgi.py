"""ASGI entry point: WebSockets in production; also answers HTTP for single-process set-ups."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtcstack_site.settings")

application = get_asgi_application()
