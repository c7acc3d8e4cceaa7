"""Run the whole platform locally: migrations, static files, the operator account, web and worker."""

import os
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.core.shutdown import stop_requested


class Command(BaseCommand):
    help = (
        "Prepare the database and run the HTTP server (granian, WSGI), the WebSocket server (uvicorn, ASGI), "
        "a Celery worker and beat and, with Redis, the live-segment persister until interrupted."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="web worker processes (default: 2 with Redis; 1 without, since the embedded guards are per process)",
        )
        parser.add_argument("--no-worker", action="store_true", help="do not start the Celery worker and beat")
        parser.add_argument(
            "--ws-port", type=int, default=None, help="the dashboard's WebSocket (ASGI) server port (default: port + 1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("ensureoperator")
        for option in ("data_folder_in", "processed_folder", "control_folder"):
            folder = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get(option)
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
        workers = options["workers"] or (2 if settings.REDIS_URL else 1)
        ws_port = options["ws_port"] or options["port"] + 1
        commands = [
            self._web_command(options["host"], options["port"], workers),
            # WebSockets need ASGI; HTTP stays on the faster WSGI server. The pages learn the socket's address.
            [
                sys.executable, "-m", "uvicorn", "rtcstack_site.asgi:application", "--host", options["host"],
                "--port", str(ws_port), "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log",
            ],
        ]  # fmt: skip
        if not options["no_worker"]:
            commands.append(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "rtcstack_site",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                ]
            )
            # Beat sends the periodic sweep that re-queues jobs whose broker message was lost.
            commands.append([sys.executable, "-m", "celery", "-A", "rtcstack_site", "beat", "--loglevel", "INFO"])
        if settings.REDIS_URL:  # the live agent's segments arrive through Redis; without it there is no live path
            commands.append([sys.executable, str(settings.BASE_DIR / "manage.py"), "persistlive"])
        self.stdout.write(
            f"RTCstack on http://{options['host']}:{options['port']}/ (admin: /admin/, API docs: /v1/docs, "
            f"dashboard: /dashboard/ with WebSockets on port {ws_port}); "
            f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
            f"Redis {'on' if settings.REDIS_URL else 'off (embedded fallbacks)'}. Ctrl-C stops."
        )
        env = {**os.environ, "DASHBOARD_WEBSOCKET_URL": f"ws://{options['host']}:{ws_port}"}
        self._supervise([subprocess.Popen(command, env=env) for command in commands])  # noqa: S603 - fixed argv

    @staticmethod
    def _web_command(host: str, port: int, workers: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            "1",
            "--no-ws",  # WebSockets are the ASGI server's
            "--static-path-route",
            "/" + settings.STATIC_URL.strip("/"),
            "--static-path-mount",
            str(settings.STATIC_ROOT),
            "rtcstack_site.wsgi:application",
        ]

    def _supervise(self, processes: list[subprocess.Popen]) -> None:
        """Wait until Ctrl-C, SIGTERM or a child exiting, then stop the rest."""
        stopping = stop_requested()
        while not stopping() and all(p.poll() is None for p in processes):
            time.sleep(0.5)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping():
            sys.exit(f"A component exited with status {failed[0].returncode}; stopped the rest.")
