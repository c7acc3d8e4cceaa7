"""Celery tasks for webhook deliveries and their sweep. Retries are broker messages with a countdown (they survive a
worker restart); the delivery's state is in the database (see delivery.py)."""

from celery import shared_task
from celery.app.task import Task

from . import delivery, services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def deliver(self: Task, delivery_id: str, attempt: int = 1) -> None:
    following = delivery.run(delivery_id, attempt)
    if following.attempt is not None:
        raise self.retry(args=(delivery_id, following.attempt), countdown=following.countdown)


@shared_task(ignore_result=True)
def requeue_overdue_deliveries() -> int:
    """The sweep, run by celery beat every JOB_SWEEP_INTERVAL_SECONDS."""
    return services.requeue_overdue()
