"""RTCstack: a self-hosted control plane for LiveKit."""

from apps.core.version import __version__

from .celery import app as celery_app

__all__ = ["__version__", "celery_app"]
