"""The Celery app: the broker is Redis when REDIS_URL is set, else kombu's filesystem transport.

celery beat, one per deployment (`manage.py serve` and the compose `beat` service run it), runs the sweeps
that queue again the transcriptions and webhook deliveries whose broker message was lost, every
JOB_SWEEP_INTERVAL_SECONDS.
"""

import os
from pathlib import Path
from typing import Any

from celery import Celery, beat
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtcstack_site.settings")

app = Celery("rtcstack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

SWEEPS = ("apps.transcription.tasks.requeue_lost_transcriptions", "apps.webhooks.tasks.requeue_overdue_deliveries")


class Scheduler(beat.Scheduler):
    """beat's in-memory scheduler (fixed intervals: no schedule file to keep) that touches
    VAR_DIR/celerybeat.alive at every tick, at least every 5 minutes, for the container's healthcheck."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self.alive = Path(settings.VAR_DIR) / "celerybeat.alive"
        self.alive.parent.mkdir(parents=True, exist_ok=True)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self.alive.touch()
        return super().tick(*args, **kwargs)


@app.on_after_configure.connect
def schedule_sweeps(sender: Celery, **kwargs: Any) -> None:
    sender.conf.beat_scheduler = Scheduler
    interval = settings.JOB_SWEEP_INTERVAL_SECONDS
    for task in SWEEPS:
        # A sweep no worker picked up before the next one is sent is dropped, not piled up.
        sender.add_periodic_task(interval, sender.signature(task), name=task, expires=interval)
