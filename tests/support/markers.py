"""The `slow` marker by cause: a fixture that starts a browser or loads the Whisper model says so where it is
defined, and every test that uses it, however indirectly, is marked `slow` (tests/conftest.py)."""

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def slow_fixture(function: F) -> F:
    """Tag a fixture function (put it under ``@pytest.fixture``) as making the tests that use it slow."""
    function.slow = True  # type: ignore[attr-defined]
    return function


def is_slow_fixture(function: Callable[..., object]) -> bool:
    return getattr(function, "slow", False)
