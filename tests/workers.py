"""Real worker processes for tests (Celery, the live persister) on the test database and the test Redis."""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .servers import ROOT, server_environment


@contextmanager
def celery_worker(extra_env: dict[str, str] | None = None, *, timeout: float = 30) -> Iterator[subprocess.Popen]:
    """Start `celery -A rtcstack_site worker` (solo pool, queue `celery`), wait until it is ready, stop it after.

    Tests using it need `transactional_db`: the worker is another process and sees only committed rows.
    The worker's output goes to a temporary file, printed if it does not start or the test fails.
    """
    env = {**server_environment(), **(extra_env or {})}
    command = [
        sys.executable, "-m", "celery", "-A", "rtcstack_site", "worker", "--pool", "solo", "--concurrency", "1",
        "-Q", "celery", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"tests-{os.getpid()}@%h",
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile("w+", prefix="celery-worker-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                log.seek(0)
                if " ready." in log.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("the Celery worker did not start:\n" + log.read()[-5000:])
                time.sleep(0.1)
            yield process
        except BaseException:
            log.seek(0)
            print("Celery worker log (tail):\n" + log.read()[-5000:])  # pytest shows it with the failure
            raise
        finally:
            process.terminate()  # warm shutdown: unfinished (e.g. countdown) messages go back to the broker
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextmanager
def live_persister(name: str = "tests-persister", *, timeout: float = 30) -> Iterator[subprocess.Popen]:
    """Run `manage.py persistlive` as its own process (as `serve` and the deployment do); SIGTERM after."""
    command = [sys.executable, str(ROOT / "manage.py"), "persistlive", "--name", name]
    with tempfile.NamedTemporaryFile("w+", prefix="persister-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=server_environment(), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                log.seek(0)
                if "Persisting live segments" in log.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("the live persister did not start:\n" + log.read()[-5000:])
                time.sleep(0.1)
            yield process
        except BaseException:
            log.seek(0)
            print("Live persister log (tail):\n" + log.read()[-5000:])
            raise
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
