"""Settings, all read from environment variables (see the README's configuration table)."""

import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str, load_env_file, s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RTCSTACK_VAR_DIR", str(BASE_DIR / "var")))
# ./run.sh writes its development settings (DEBUG=1, a generated SECRET_KEY) here on first start, so every
# manage.py command runs with the same ones as the server.
load_env_file(VAR_DIR / "dev.env")

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (./run.sh generates one in var/dev.env)")
    SECRET_KEY = "django-insecure-rtcstack-development-only-key-do-not-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_guid",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "apps.core",
    "apps.apikeys",
    "apps.rooms",
    "apps.recordings",
    "apps.transcription",
    "apps.webhooks",
    "apps.dashboard",
]

# Django's standard stack; the Site* ones are skipped for /v1 (see apps/core/middleware.py). CSRF and
# clickjacking protection stay as Django's own classes, which its deploy checks look for by name.
MIDDLEWARE = [
    # Request ids first (X-Request-ID in, out, and on every log record), then one access-log line per request.
    "django_guid.middleware.guid_middleware",
    "apps.core.logging.AccessLogMiddleware",
    # X-Forwarded-For/-Proto count only from TRUSTED_PROXIES, before anything reads the scheme or address.
    "apps.core.middleware.TrustedProxyMiddleware",
    # A NUL in the path is a 400 here, before static files, the admin or any view tries to look it up.
    "apps.core.middleware.RejectNulMiddleware",
    # A /v1 body larger than its endpoint takes is a 413 on Content-Length, before anything reads it.
    "apps.core.middleware.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "apps.core.middleware.SiteSessionMiddleware",
    "apps.core.middleware.SiteCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "apps.core.middleware.SiteAuthenticationMiddleware",
    "apps.core.middleware.SiteMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes: turns a locked-out sign-in into its 429 page; last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rtcstack_site.urls"
WSGI_APPLICATION = "rtcstack_site.wsgi.application"
ASGI_APPLICATION = "rtcstack_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that stops answering is a 503 after this long, not a request (and worker) waiting forever.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 3)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: replay guard, rate limits, key-cache invalidation, cache, Channels layer, Celery broker.
# Unset means the embedded defaults: in-process guards, cache and channel layer, Celery on the filesystem.
REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # channels_redis waits up to 5 s in BZPOPMIN; redis-py 8's default 5 s socket timeout would cut that wait and
    # kill every idle WebSocket consumer, so reads get a longer timeout.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A killed worker's unacknowledged task is handed out again after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600)}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "filesystem://localhost/"  # a host name, or kombu warns on every connection
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),  # exchange tables; kombu's default is ./control
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Sign-in brute-force protection (django-axes) for /admin/login/ and /dashboard/login/: after AXES_FAILURE_LIMIT
# failed attempts from one client address (for one account or spread over several) that address is refused,
# the right password included, until AXES_COOLOFF_MINUTES pass without another attempt. Counted in the database.
# The address is REMOTE_ADDR, which TrustedProxyMiddleware sets from X-Forwarded-For behind a trusted proxy.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False  # lockouts are still logged (WARNING); not a banner per process and a line per sign-in

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))

# Recording files: an S3-compatible bucket when S3_BUCKET is set, else local files under var/.
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL")
S3_BUCKET = env_str("S3_BUCKET")
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID")
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY")
S3_REGION = env_str("S3_REGION", "us-east-1")
RECORDING_URL_TTL_SECONDS = env_int("RECORDING_URL_TTL_SECONDS", 900)
RECORDING_UPLOAD_MAX_BYTES = env_int("RECORDING_UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
# The largest /v1 request body, judged on Content-Length before it is read: twice the largest field (64 KiB of
# metadata), for JSON's escaping. The upload endpoint takes RECORDING_UPLOAD_MAX_BYTES more (the file).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 128 * 1024)
# Signed requests hash the whole body, so an upload is read into memory: Django's own ceiling is the upload's.
DATA_UPLOAD_MAX_MEMORY_SIZE = RECORDING_UPLOAD_MAX_BYTES + API_MAX_BODY_BYTES
if S3_BUCKET:
    RECORDINGS_STORAGE = s3_storage(
        bucket=S3_BUCKET,
        endpoint_url=S3_ENDPOINT_URL,
        access_key=S3_ACCESS_KEY_ID,
        secret_key=S3_SECRET_ACCESS_KEY,
        region=S3_REGION,
        url_ttl=RECORDING_URL_TTL_SECONDS,
    )
else:
    RECORDINGS_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "recordings")},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "recordings": RECORDINGS_STORAGE,
}

# Security: secure defaults whenever DEBUG is off; each can be overridden by its variable.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", True) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^v1/health$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
X_FRAME_OPTIONS = "DENY"
# Proxies (CIDRs) whose X-Forwarded-Proto and X-Forwarded-For are believed; from any other peer both headers are
# dropped, so nobody can claim HTTPS or another client address by sending them.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", ["127.0.0.0/8", "::1/128"])
# One Content-Security-Policy (django-csp) on every HTML page: the admin, the API docs (Swagger UI from the
# sidecar) and the dashboard load scripts and styles from our own static files only. The dashboard's sockets
# (this host, or DASHBOARD_WEBSOCKET_URL) are added to connect-src per request (apps/core/middleware.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Logs: JSON lines (python-json-logger) by default, readable text with DEBUG; every record carries the request id
# (django-guid: X-Request-ID read from the request or generated, returned on the response) and has the configured
# secrets scrubbed (apps/core/logging.py).
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId", "correlation_id_field": "request_id"},
        "secrets": {"()": "apps.core.logging.secrets_filter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id", "secrets"], "formatter": LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own loggers propagate to the root handler instead of printing twice.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # django-guid logs every generated id at INFO; the id is on each record already.
        "django_guid": {"level": "WARNING"},
        "rtcstack.access": {"level": "INFO" if env_bool("ACCESS_LOG", True) else "WARNING"},
    },
}
LOGGING_CONFIG = "apps.core.logging.configure"  # dictConfig, and Python warnings through the same handler
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "VALIDATE_GUID": True, "RETURN_HEADER": True, "EXPOSE_HEADER": False}
# Celery workers log through the handler above (JSON lines) instead of replacing it with their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.apikeys.authentication.SignedRequestAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.apikeys.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["apps.core.codecs.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.codecs.ORJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.codecs.SingleRendererNegotiation",
    "DEFAULT_THROTTLE_CLASSES": [],
    "EXCEPTION_HANDLER": "apps.core.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "RTCstack API",
    "DESCRIPTION": "Control plane for LiveKit calls. Every endpoint except health, schema and docs "
    "takes an HMAC-signed request (see the README).",
    "VERSION": "1",
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "IngressTypeEnum": ["rtmp", "whip"],
        "TrackTypeEnum": ["audio", "video", "data"],
        "TranscriptionTypeEnum": "apps.transcription.models.Transcription.Kind",
        "TranscriptionStatusEnum": "apps.transcription.models.Transcription.Status",
    },
}

# LiveKit. LIVEKIT_WSS_URL is the reference implementation's name for LIVEKIT_PUBLIC_URL.
LIVEKIT_URL = env_str("LIVEKIT_URL")
LIVEKIT_PUBLIC_URL = env_str("LIVEKIT_PUBLIC_URL") or env_str("LIVEKIT_WSS_URL") or "ws://localhost:7880"
LIVEKIT_API_KEY = env_str("LIVEKIT_API_KEY", "devkey" if DEBUG else "")
LIVEKIT_API_SECRET = env_str("LIVEKIT_API_SECRET", "secret" if DEBUG else "")
if DEBUG and LIVEKIT_API_SECRET == "secret":  # noqa: S105 - livekit-server --dev's own credentials
    # Short by design (devkey/secret); PyJWT would warn at every token signed with them.
    warnings.filterwarnings("ignore", message="The HMAC key is .* below the minimum recommended length")
TOKEN_TTL_SECONDS = env_int("TOKEN_TTL_SECONDS", 21_600)
LIVEKIT_TIMEOUT_SECONDS = env_int("LIVEKIT_TIMEOUT_SECONDS", 5)

# Dashboard: where pages open their WebSockets; empty = the page's own origin (a proxy routes /ws/ to ASGI).
DASHBOARD_WEBSOCKET_URL = env_str("DASHBOARD_WEBSOCKET_URL")

# Whisper: the engine and client read their WHISPER_* variables themselves (apps/transcription, no Django).
WHISPER_URL = env_str("WHISPER_URL")
# Queue a post-call transcription whenever a recording completes (or per recording: autoTranscribe).
AUTO_TRANSCRIBE_RECORDINGS = env_bool("AUTO_TRANSCRIBE_RECORDINGS", False)
TRANSCRIPTION_MAX_RETRIES = env_int("TRANSCRIPTION_MAX_RETRIES", 5)
# Seconds before the first retry after a transient failure; doubled for each further one, at most 10 minutes.
TRANSCRIPTION_RETRY_DELAY_SECONDS = env_int("TRANSCRIPTION_RETRY_DELAY_SECONDS", 5)
# How long a worker holds a job it runs; a heartbeat renews it every third of this while the job runs, so a
# second delivery of the message leaves the job alone, and a dead worker's job runs again once it lapses.
TRANSCRIPTION_LEASE_SECONDS = env_int("TRANSCRIPTION_LEASE_SECONDS", 60)
# celery beat's sweep: how often it runs, and how late a queued transcription or webhook delivery must be
# before it is queued again (its broker message was lost, e.g. Redis restarted empty).
JOB_SWEEP_INTERVAL_SECONDS = env_int("JOB_SWEEP_INTERVAL_SECONDS", 60)
JOB_SWEEP_GRACE_SECONDS = env_int("JOB_SWEEP_GRACE_SECONDS", 120)
if min(TRANSCRIPTION_RETRY_DELAY_SECONDS, JOB_SWEEP_GRACE_SECONDS) < 0 or TRANSCRIPTION_LEASE_SECONDS < 3:
    raise ImproperlyConfigured(
        "TRANSCRIPTION_RETRY_DELAY_SECONDS and JOB_SWEEP_GRACE_SECONDS must not be negative, "
        "TRANSCRIPTION_LEASE_SECONDS must be at least 3"
    )
if JOB_SWEEP_INTERVAL_SECONDS < 1:
    raise ImproperlyConfigured("JOB_SWEEP_INTERVAL_SECONDS must be at least 1")

# API keys: Fernet keys (comma-separated, newest first) that encrypt secrets at rest.
# Unset: one key derived from SECRET_KEY (the deploy check warns).
API_KEY_ENCRYPTION_KEYS = env_list("API_KEY_ENCRYPTION_KEYS", [])
SIGNATURE_MAX_AGE_SECONDS = env_int("SIGNATURE_MAX_AGE_SECONDS", 300)
# Failed verifications (wrong signature, unknown key id) allowed a minute per client address and per key id
# before the next failure is a 429 and larger bodies are refused unread; 0 = no limit.
SIGNATURE_FAILURE_LIMIT_PER_IP = env_int("SIGNATURE_FAILURE_LIMIT_PER_IP", 30)
SIGNATURE_FAILURE_LIMIT_PER_KEY = env_int("SIGNATURE_FAILURE_LIMIT_PER_KEY", 120)
API_KEY_DEFAULT_RATE_LIMIT = env_int("API_KEY_DEFAULT_RATE_LIMIT", 1200)

# The operator account the run command creates on first start.
RTCSTACK_ADMIN_USERNAME = env_str("RTCSTACK_ADMIN_USERNAME", "admin")
RTCSTACK_ADMIN_EMAIL = env_str("RTCSTACK_ADMIN_EMAIL", "")

# --- Outgoing webhooks (apps/webhooks) ---------------------------------------------------------------
# Refuse endpoint URLs that resolve to private, loopback, link-local, multicast or reserved addresses.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
# Seconds to wait for a receiver (connect and each read).
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Seconds before each retry after a failed attempt (default 30 s … 6 h, about 8.7 h in all): len + 1 attempts,
# then the delivery fails.
try:
    WEBHOOK_RETRY_DELAYS = [
        int(s) for s in env_list("WEBHOOK_RETRY_DELAYS", ["30", "120", "600", "1800", "7200", "21600"])
    ]
except ValueError as exc:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must be comma-separated whole seconds") from exc
if any(delay < 0 for delay in WEBHOOK_RETRY_DELAYS) or WEBHOOK_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must not be negative and WEBHOOK_TIMEOUT_SECONDS must be positive")
# --- end of outgoing webhooks ------------------------------------------------------------------------
