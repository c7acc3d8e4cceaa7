"""WSGI entry point: serves all HTTP traffic in production (SPEC §2 serving note)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtcstack_site.settings")

application = get_wsgi_application()
