"""Typed readers for environment variables; every setting's default is documented in the README."""

import os
from pathlib import Path
from typing import Any

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def load_env_file(path: Path) -> None:
    """Read NAME=value lines (run.sh's generated development settings) for every name the environment lacks.

    So every manage.py command uses the SECRET_KEY and DEBUG the server runs with; the environment still wins.
    """
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def s3_storage(
    *, bucket: str, endpoint_url: str, access_key: str, secret_key: str, region: str, url_ttl: int
) -> dict[str, Any]:
    """django-storages' S3 backend for recordings: private objects, presigned URLs, path-style addressing."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "region_name": region,
            "querystring_auth": True,
            "querystring_expire": url_ttl,
            "file_overwrite": False,
            "default_acl": None,
            # SigV4 and path-style URLs (MinIO); fail fast when the bucket is unreachable (503, not a hang).
            "client_config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 2},
            ),
        },
    }
