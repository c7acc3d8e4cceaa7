"""Test settings: the real PostgreSQL and Redis of the machine, unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rtcstack")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-secret-key-for-the-rtcstack-test-suite-only-0123456789")
os.environ.setdefault("LIVEKIT_API_KEY", "APItestkey")
os.environ.setdefault("LIVEKIT_API_SECRET", "test-livekit-secret-that-is-long-enough-0123456789")
os.environ.setdefault("LIVEKIT_PUBLIC_URL", "wss://livekit.test.example")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DEBUG", "0")  # not var/dev.env's DEBUG=1 from a ./run.sh in this checkout

from rtcstack_site.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Every /v1 response a test receives is checked against the published OpenAPI schema (tests/schema_validation.py).
MIDDLEWARE = ["tests.schema_validation.ResponseSchemaMiddleware", *MIDDLEWARE]  # noqa: F405
