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
def child_process(
    command: list[str], env: dict[str, str], *, ready: str, what: str, timeout: float = 30, stop_timeout: float = 20
) -> Iterator[subprocess.Popen]:
    """Start a process, wait until its output says `ready`, SIGTERM it after (then SIGKILL if it lingers).

    Its output goes to a temporary file, printed if it does not start or the test fails.
    """
    with tempfile.NamedTemporaryFile("w+", prefix="child-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                log.seek(0)
                if ready in log.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the {what} did not start:\n" + log.read()[-5000:])
                time.sleep(0.1)
            yield process
        except BaseException:
            log.seek(0)
            print(f"{what} log (tail):\n" + log.read()[-5000:])  # pytest shows it with the failure
            raise
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


@contextmanager
def celery_worker(extra_env: dict[str, str] | None = None, *, timeout: float = 30) -> Iterator[subprocess.Popen]:
    """`celery -A rtcstack_site worker` (solo pool, queue `celery`); SIGTERM is a warm shutdown, so unfinished
    (e.g. countdown) messages go back to the broker.

    Tests using it need `transactional_db`: the worker is another process and sees only committed rows.
    """
    command = [
        sys.executable, "-m", "celery", "-A", "rtcstack_site", "worker", "--pool", "solo", "--concurrency", "1",
        "-Q", "celery", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"tests-{os.getpid()}@%h",
    ]  # fmt: skip
    env = {**server_environment(), **(extra_env or {})}
    with child_process(command, env, ready=" ready.", what="Celery worker", timeout=timeout) as process:
        yield process


@contextmanager
def live_persister(name: str = "tests-persister", *, timeout: float = 30) -> Iterator[subprocess.Popen]:
    """`manage.py persistlive`, as `serve` and the deployment run it."""
    command = [sys.executable, str(ROOT / "manage.py"), "persistlive", "--name", name]
    with child_process(
        command, server_environment(), ready="Persisting live segments", what="live persister", timeout=timeout
    ) as process:
        yield process
