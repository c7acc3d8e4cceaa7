"""The Celery app: the broker is Redis when REDIS_URL is set, else kombu's filesystem transport."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtcstack_site.settings")

app = Celery("rtcstack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
