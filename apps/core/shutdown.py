"""Graceful stop for long-running commands: SIGTERM (containers, supervisors) and Ctrl-C set a flag loops poll."""

import signal
import threading
from collections.abc import Callable
from typing import Any


def stop_requested() -> Callable[[], bool]:
    """Install the handlers; the returned callable says whether a stop was asked for."""
    requested = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        requested.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return requested.is_set
