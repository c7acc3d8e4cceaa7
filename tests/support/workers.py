"""Real worker processes for tests (Celery worker and beat, the live persister) on the test database and the
test Redis, and a TCP proxy that puts faults between them and the servers they use."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO

from tests.support.servers import ROOT, server_environment


class ChildProcess(subprocess.Popen):
    """A Popen whose combined output goes to a log file the test can read while it runs."""

    def __init__(self, command: list[str], env: dict[str, str], log: IO[str]) -> None:
        super().__init__(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.log_path = log.name

    def output(self) -> str:
        with open(self.log_path, errors="replace") as log:
            return log.read()


@contextmanager
def child_process(
    command: list[str], env: dict[str, str], *, ready: str, what: str, timeout: float = 30, stop_timeout: float = 20
) -> Iterator[ChildProcess]:
    """Start a process, wait until its output says `ready`, SIGTERM it after (then SIGKILL if it lingers).

    Its output goes to a temporary file, printed if it does not start or the test fails.
    """
    with tempfile.NamedTemporaryFile("w+", prefix="child-", suffix=".log") as log:
        process = ChildProcess(command, env, log)
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
def celery_worker(
    extra_env: dict[str, str] | None = None, *, timeout: float = 30, name: str = "tests"
) -> Iterator[ChildProcess]:
    """`celery -A rtcstack_site worker` (solo pool, queue `celery`); SIGTERM is a warm shutdown, so unfinished
    (e.g. countdown) messages go back to the broker. Two at once need different `name`s.

    Tests using it need `transactional_db`: the worker is another process and sees only committed rows.
    """
    command = [
        sys.executable, "-m", "celery", "-A", "rtcstack_site", "worker", "--pool", "solo", "--concurrency", "1",
        "-Q", "celery", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"{name}-{os.getpid()}@%h",
    ]  # fmt: skip
    env = {**server_environment(), **(extra_env or {})}
    with child_process(command, env, ready=" ready.", what="Celery worker", timeout=timeout) as process:
        yield process


@contextmanager
def celery_beat(extra_env: dict[str, str] | None = None, *, timeout: float = 30) -> Iterator[ChildProcess]:
    """`celery -A rtcstack_site beat`, as `serve` and the deployment run it (the periodic sweep)."""
    command = [sys.executable, "-m", "celery", "-A", "rtcstack_site", "beat", "--loglevel", "INFO"]
    env = {**server_environment(), **(extra_env or {})}
    with child_process(command, env, ready="beat: Starting", what="Celery beat", timeout=timeout) as process:
        yield process


@contextmanager
def live_persister(name: str = "tests-persister", *, timeout: float = 30) -> Iterator[subprocess.Popen]:
    """`manage.py persistlive`, as `serve` and the deployment run it."""
    command = [sys.executable, str(ROOT / "manage.py"), "persistlive", "--name", name]
    with child_process(
        command, server_environment(), ready="Persisting live segments", what="live persister", timeout=timeout
    ) as process:
        yield process


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of `port`, for fault injection between a process and a server.

    `cut()` drops every connection and refuses new ones (the server is gone, as when it restarts);
    `freeze()` keeps connections open but holds every byte until `thaw()` (the server hangs).
    """

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.accepting = True
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "TcpProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.accepting = False
        self.flowing.set()
        self.listener.close()
        self._close_all()

    def cut(self) -> None:
        self.accepting = False
        self._close_all()

    def restore(self) -> None:
        self.accepting = True

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def _close_all(self) -> None:
        with self.lock:
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.accepting:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
