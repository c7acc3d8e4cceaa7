from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


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
