"""Celery task for webhook deliveries. Retries are broker messages with a countdown (they survive a
worker restart); the delivery's state is in the database (see delivery.py)."""

from typing import Any

from celery import shared_task
from celery.app.task import Task
from celery.signals import worker_ready

from . import delivery, services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def deliver(self: Task, delivery_id: str, attempt: int = 1) -> None:
    following = delivery.run(delivery_id, attempt)
    if following.attempt is not None:
        raise self.retry(args=(delivery_id, following.attempt), countdown=following.countdown)


@shared_task(ignore_result=True)
def requeue_overdue_deliveries() -> int:
    """Safety net run at every worker start (and worth scheduling with celery beat, e.g. every 10 minutes)."""
    return services.requeue_overdue()


@worker_ready.connect
def _requeue_on_worker_start(**kwargs: Any) -> None:
    requeue_overdue_deliveries.delay()
