from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from apps.core import crypto
from apps.webhooks.models import WebhookEndpoint

from .models import ApiKey


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs: Any, **kwargs: Any) -> list:
    if not settings.API_KEY_ENCRYPTION_KEYS:
        return [
            Warning(
                "API_KEY_ENCRYPTION_KEYS is not set: API-key secrets are encrypted with a key derived "
                "from SECRET_KEY, so changing SECRET_KEY makes every stored key unusable.",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="apikeys.W001",
            )
        ]
    return []


@register(Tags.security)
def check_encryption_key_format(app_configs: Any, **kwargs: Any) -> list:
    errors = []
    for index, key in enumerate(settings.API_KEY_ENCRYPTION_KEYS):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(f"API_KEY_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key.", id="apikeys.E001")
            )
    return errors


@register(Tags.database)
def check_stored_secrets_decrypt(app_configs: Any, databases: Any = None, **kwargs: Any) -> list:
    """Name every stored secret the configured keys cannot decrypt (run by migrate, so at every start)."""
    if not databases:
        return []
    stored = (("API key", ApiKey, "key_id"), ("webhook endpoint", WebhookEndpoint, "public_id"))
    undecryptable = []
    try:
        for label, model, id_field in stored:
            for public_id, token in model.objects.values_list(id_field, "secret_encrypted").iterator():
                try:
                    crypto.decrypt_secret(token)
                except crypto.UndecryptableSecretError:
                    undecryptable.append(f"{label} {public_id}")
    except DatabaseError:  # not migrated yet (or unreachable: other checks and commands report that)
        return []
    if not undecryptable:
        return []
    return [
        Warning(
            f"{len(undecryptable)} stored secret(s) cannot be decrypted ({', '.join(undecryptable[:10])}"
            f"{', …' if len(undecryptable) > 10 else ''}); requests with those keys get 503 and those webhooks fail.",
            hint=crypto.UNDECRYPTABLE_DETAIL,
            id="apikeys.W002",
        )
    ]
