"""Write the config files of LiveKit, LiveKit Egress and coturn with real values, at start.

coturn and Egress read their files literally: a `${VAR}` inside turnserver.conf or egress.yaml reaches the
program as the text `${VAR}` (the reference stack shipped such files; TURN and recording silently did not
work). LiveKit reads scalar settings from LIVEKIT_* variables, but not lists such as webhook URLs and TURN
servers. So the compose file's one-shot `config` service runs this script before those three start: it
takes the committed base files next to it (every setting that is neither a secret nor a host name) and
writes complete files into a volume they mount read-only.

    python docker/render_config.py --templates docker --out /generated

TURN credentials: coturn checks them against TURN_SECRET (the TURN REST API scheme, `use-auth-secret`).
LiveKit has no setting for such a secret, only a fixed username and credential per TURN server
(livekit/livekit#2245), so this script derives one from the secret: username `<expiry>:livekit`,
credential base64(HMAC-SHA1(TURN_SECRET, username)), valid TURN_CREDENTIAL_TTL_DAYS from each start.

Standard library plus PyYAML (which the image has); no Django.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

WEBHOOK_PATH = "/v1/livekit/webhook"
MIN_LIVEKIT_SECRET_LENGTH = 32  # LiveKit logs an error for shorter secrets


class ConfigError(Exception):
    """A required setting is missing or invalid; the message names it."""


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _require(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if not value:
        raise ConfigError(f"{name} is not set (docker/.env)")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name} must be a port number, got {raw!r}")
    return port


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def turn_credential(
    secret: str, *, ttl_seconds: int, user: str = "livekit", now: float | None = None
) -> tuple[str, str]:
    """A TURN REST API credential: (username, password) that coturn accepts with `static-auth-secret`."""
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def _redis(env: Mapping[str, str]) -> dict[str, Any]:
    return {"address": f"{_get(env, 'REDIS_HOST', 'redis')}:6379", "password": _require(env, "REDIS_PASSWORD")}


def _livekit_credentials(env: Mapping[str, str]) -> tuple[str, str]:
    key, secret = _require(env, "LIVEKIT_API_KEY"), _require(env, "LIVEKIT_API_SECRET")
    if len(secret) < MIN_LIVEKIT_SECRET_LENGTH:
        raise ConfigError(f"LIVEKIT_API_SECRET must be at least {MIN_LIVEKIT_SECRET_LENGTH} characters")
    return key, secret


def render_livekit(base: dict[str, Any], env: Mapping[str, str], *, now: float | None = None) -> dict[str, Any]:
    key, secret = _livekit_credentials(env)
    domain, turn_domain = _require(env, "RTC_DOMAIN"), _require(env, "TURN_DOMAIN")
    ttl_days = _positive_int(env, "TURN_CREDENTIAL_TTL_DAYS", 365)
    username, credential = turn_credential(_require(env, "TURN_SECRET"), ttl_seconds=ttl_days * 86_400, now=now)
    config = dict(base)
    config["keys"] = {key: secret}
    config["redis"] = _redis(env)
    config["webhook"] = {"api_key": key, "urls": [_get(env, "LIVEKIT_WEBHOOK_URL", f"https://{domain}{WEBHOOK_PATH}")]}
    rtc = dict(config.get("rtc") or {})
    if _get(env, "LIVEKIT_NODE_IP"):
        rtc["node_ip"] = _get(env, "LIVEKIT_NODE_IP")
        rtc["use_external_ip"] = False
    turn = {"host": turn_domain, "username": username, "credential": credential}
    rtc["turn_servers"] = [
        {**turn, "port": _port(env, "TURN_TLS_PORT", 5349), "protocol": "tls"},
        {**turn, "port": _port(env, "TURN_PORT", 3478), "protocol": "udp"},
    ]
    config["rtc"] = rtc
    return config


def render_egress(base: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    key, secret = _livekit_credentials(env)
    config = dict(base)
    config.update(
        api_key=key,
        api_secret=secret,
        ws_url=_get(env, "LIVEKIT_INTERNAL_WS_URL", "ws://livekit:7880"),
        redis=_redis(env),
    )
    config["s3"] = {
        **(base.get("s3") or {}),
        "access_key": _require(env, "S3_ACCESS_KEY_ID"),
        "secret": _require(env, "S3_SECRET_ACCESS_KEY"),
        "region": _get(env, "S3_REGION", "us-east-1"),
        "endpoint": f"https://{_require(env, 'S3_DOMAIN')}",
        "bucket": _get(env, "S3_BUCKET", "recordings"),
        "force_path_style": True,
    }
    return config


def render_turnserver(base: str, env: Mapping[str, str]) -> str:
    """coturn's file: the base options plus the values from the environment (no `${...}` survives)."""
    domain = _require(env, "TURN_DOMAIN")
    lines = [
        f"realm={domain}",
        f"server-name={domain}",
        f"static-auth-secret={_require(env, 'TURN_SECRET')}",
        f"listening-port={_port(env, 'TURN_PORT', 3478)}",
        f"tls-listening-port={_port(env, 'TURN_TLS_PORT', 5349)}",
        f"min-port={_port(env, 'TURN_MIN_PORT', 49152)}",
        f"max-port={_port(env, 'TURN_MAX_PORT', 65535)}",
    ]
    for name, option in (("TURN_LISTEN_IP", "listening-ip"), ("TURN_EXTERNAL_IP", "external-ip")):
        if _get(env, name):
            lines.append(f"{option}={_get(env, name)}")
    if _get(env, "LIVEKIT_NODE_IP"):  # LiveKit on a private address: let the relay reach it
        lines.append(f"allowed-peer-ip={_get(env, 'LIVEKIT_NODE_IP')}")
    # The certificate: given paths, else coturn-start.sh finds the one Caddy obtained for TURN_DOMAIN.
    if _get(env, "TURN_TLS_CERT_FILE") or _get(env, "TURN_TLS_KEY_FILE"):
        lines += [f"cert={_require(env, 'TURN_TLS_CERT_FILE')}", f"pkey={_require(env, 'TURN_TLS_KEY_FILE')}"]
    return base.rstrip("\n") + "\n\n# --- from the environment (render_config.py) ---\n" + "\n".join(lines) + "\n"


def render_all(templates: Path, env: Mapping[str, str], *, now: float | None = None) -> dict[str, str]:
    """File name -> content of the three generated files."""

    def load(name: str) -> dict[str, Any]:
        return yaml.safe_load((templates / name).read_text()) or {}

    header = "# Generated by docker/render_config.py at start; edit docker/{} and docker/.env instead.\n"
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, default_flow_style=False)  # noqa: E731
    return {
        "livekit.yaml": header.format("livekit.yaml") + dump(render_livekit(load("livekit.yaml"), env, now=now)),
        "egress.yaml": header.format("egress.yaml") + dump(render_egress(load("egress.yaml"), env)),
        "turnserver.conf": render_turnserver((templates / "turnserver.conf").read_text(), env),
    }


def write(out: Path, files: Mapping[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        temporary = out / f".{name}.tmp"
        temporary.write_text(content)
        # Readable by the other containers' users (coturn runs as nobody); only they mount this volume.
        temporary.chmod(0o644)
        temporary.replace(out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        files = render_all(args.templates, os.environ)
    except ConfigError as exc:
        print(f"render_config: {exc}", file=sys.stderr)
        return 2
    write(args.out, files)
    print(f"render_config: wrote {', '.join(sorted(files))} to {args.out}")  # names only, never values
    return 0


if __name__ == "__main__":
    sys.exit(main())
