"""Creating, rotating and revoking API keys. The plain secret leaves these functions once, to the caller."""

import secrets
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from apps.core import crypto

from .models import ApiKey, Scope

KEY_ID_PREFIX = "rk_"


def generate_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(12)


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    unknown = sorted(set(chosen) - set(Scope.values))
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(unknown)}. Choose from: {', '.join(Scope.values)}.")
    if not chosen:
        raise ValueError("A key needs at least one scope.")
    return chosen


def create_api_key(
    name: str,
    scopes: Iterable[str] = (Scope.ALL,),
    *,
    key_id: str | None = None,
    secret: str | None = None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; pass key_id and secret together to import credentials issued elsewhere."""
    if (key_id is None) != (secret is None):
        raise ValueError("Import needs both a key ID and a secret.")
    if secret is not None and len(secret) < 16:
        raise ValueError("An imported secret must be at least 16 characters long.")
    plain = secret or generate_secret()
    key = ApiKey(
        key_id=key_id or generate_key_id(),
        name=name,
        scopes=validate_scopes(scopes),
        expires_at=expires_at,
        secret_encrypted=crypto.encrypt_secret(plain),
    )
    if rate_limit_per_minute is not None:
        key.rate_limit_per_minute = rate_limit_per_minute
    key.save()
    return key, plain


def assign_new_secret(key: ApiKey) -> str:
    """Set a fresh secret on an unsaved or saved key; the caller saves it."""
    return crypto.assign_new_secret(key, generate_secret)


def rotate_secret(key: ApiKey) -> str:
    """Replace the secret; the old one stops working as soon as this commits."""
    return crypto.rotate_secret(key, generate_secret)


def revoke(key: ApiKey) -> None:
    if not key.active and key.revoked_at:
        return
    key.active = False
    key.revoked_at = timezone.now()
    key.save(update_fields=["active", "revoked_at"])
