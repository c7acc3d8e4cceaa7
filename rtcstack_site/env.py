"""The settings' environment: envvars' readers raising ImproperlyConfigured, var/dev.env, and S3 storage.

Every setting's default is documented in the README.
"""

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

import envvars

P = ParamSpec("P")
T = TypeVar("T")


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


def _django_facing(reader: Callable[P, T]) -> Callable[P, T]:
    """The shared reader (envvars), raising Django's ImproperlyConfigured for a bad value, as settings must."""

    @functools.wraps(reader)
    def read(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return reader(*args, **kwargs)
        except envvars.ConfigError as exc:
            raise ImproperlyConfigured(str(exc)) from exc

    return read


env_str = _django_facing(envvars.env_str)
env_bool = _django_facing(envvars.env_bool)
env_int = _django_facing(envvars.env_int)
env_list = _django_facing(envvars.env_list)


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
