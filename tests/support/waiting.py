"""Polling for something another process or thread does: the one wait loop the tests share."""

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], what: str = "the condition", timeout: float = 30) -> Any:
    """Poll `predicate` until it returns something truthy and return that; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
