"""Typed readers for environment variables: the one parser the site, the live agent and the speech services share.

One rule for every reader: an unset or blank variable (surrounding spaces are ignored) means the default, the
way docker compose's `${NAME:-}` and an `.env` file's `NAME=` line mean "not configured". A value that does not
parse, or lies outside the allowed range, is a `ConfigError` naming the variable and the value, so a
misconfigured process fails at start rather than mid-request.

Standard library only, and none of the project's packages (pyproject.toml [tool.importlinter]): `agent`,
`speech` and `rtcstack_site` all import it. Django settings turn `ConfigError` into `ImproperlyConfigured`
(rtcstack_site/env.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

__all__ = [
    "ConfigError",
    "env_bool",
    "env_float",
    "env_int",
    "env_list",
    "env_optional",
    "env_port",
    "env_str",
    "parse_bool",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A variable's value is unusable; the message names the variable and the value."""


def parse_bool(text: str, *, name: str) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case; also the Whisper service's boolean query parameters."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {text!r}.")


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    """The stripped value, or None when unset or blank (the caller's default applies)."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] | None = None) -> str:
    return _raw(name, environ) or default


def env_optional(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """For settings whose absence switches a feature off (WHISPER_URL, REDIS_URL, tokens)."""
    return _raw(name, environ)


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        return parse_bool(raw, name=name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}.") from None
    _check_range(name, raw, value, minimum, maximum)
    return value


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    """A finite number: `nan` and `inf` are refused like any other non-number."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a number, got {raw!r}.")
    _check_range(name, raw, value, minimum, maximum)
    return value


def env_port(name: str, default: int, *, environ: Mapping[str, str] | None = None) -> int:
    """A TCP port to listen on; 0 lets the system pick a free one."""
    return env_int(name, default, minimum=0, maximum=65_535, environ=environ)


def env_list(name: str, default: Sequence[str] = (), *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Comma-separated items, each stripped; empty items are dropped. Set but blank is an empty list (no proxies,
    no retries), not the default: an explicit "none" must stay expressible."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def _check_range(name: str, raw: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {raw!r}.")
