"""Run the live hand-over until SIGTERM or Ctrl-C: the agent's segments into PostgreSQL, and whatever other apps
start beside it through `persister_started` (the dashboard relays the agent's transient events)."""

import socket
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.core.redis import get_redis
from apps.core.shutdown import stop_requested
from apps.transcription.persister import Persister
from apps.transcription.signals import persister_started


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
        companions = [future for _, future in persister_started.send(sender=Persister, should_stop=stopping)]
        self.stdout.write(f"Persisting live segments as consumer {options['name']!r}.", ending="\n")
        self.stdout.flush()
        Persister(client, options["name"]).run(stopping)
        for future in companions:
            future.result(timeout=5)
