"""Run the live hand-over until SIGTERM or Ctrl-C: the agent's segments into PostgreSQL, its events to the dashboard."""

import socket
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.redis import get_redis
from apps.core.shutdown import stop_requested
from apps.dashboard import events
from apps.dashboard.relay import relay
from apps.transcription.persister import Persister


class Command(BaseCommand):
    help = (
        "Store the live agent's final segments in PostgreSQL as they arrive in Redis, and relay its speaking "
        "indicators and partial results to the dashboard."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--name",
            default=socket.gethostname(),
            help="consumer name; keep it stable across restarts so this process re-reads what it left pending",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = get_redis()
        if client is None:
            raise CommandError("REDIS_URL is not set: the live agent hands its segments over through Redis.")
        stopping = stop_requested()
        relaying = events.submit(relay(settings.REDIS_URL, stopping))
        self.stdout.write(f"Persisting live segments as consumer {options['name']!r}.", ending="\n")
        self.stdout.flush()
        Persister(client, options["name"]).run(stopping)
        relaying.result(timeout=5)
