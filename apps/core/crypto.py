"""Encryption of stored secrets (API keys, webhook endpoints) at rest with Fernet (AES + HMAC).

API_KEY_ENCRYPTION_KEYS lists Fernet keys newest first: the first encrypts, all decrypt, so
operators can rotate the encryption key without re-issuing API keys.
"""

import base64
from collections.abc import Callable
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from .problems import ServiceUnavailable

UNDECRYPTABLE_DETAIL = (
    "Stored secrets cannot be decrypted: they were encrypted with a key this server lacks (API_KEY_ENCRYPTION_KEYS "
    "changed, or SECRET_KEY when API_KEY_ENCRYPTION_KEYS is unset). Restore the old key (new keys first, old "
    "ones after them in API_KEY_ENCRYPTION_KEYS), or rotate the secret."
)


class UndecryptableSecretError(ServiceUnavailable, InvalidToken):
    """A stored secret that none of the configured keys decrypts: a configuration fault, answered with a 503."""

    def __init__(self) -> None:
        super().__init__(UNDECRYPTABLE_DETAIL, kind="undecryptable-secret")


def derived_key() -> bytes:
    """A Fernet key derived from SECRET_KEY, used only when API_KEY_ENCRYPTION_KEYS is unset."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rtcstack-apikeys", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(settings.SECRET_KEY.encode()))


@cache
def _fernet() -> MultiFernet:
    keys = [k.encode() for k in settings.API_KEY_ENCRYPTION_KEYS] or [derived_key()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableSecretError from exc


def reset_cache() -> None:
    _fernet.cache_clear()


def assign_new_secret(obj: Model, generate: Callable[[], str]) -> str:
    """Put a fresh secret from `generate`, encrypted, on an unsaved or saved object (its `secret_encrypted`);
    the caller saves it. The plain secret is returned to be shown once and is never stored."""
    plain = generate()
    obj.secret_encrypted = encrypt_secret(plain)
    return plain


@transaction.atomic
def rotate_secret(obj: Model, generate: Callable[[], str]) -> str:
    """Replace a saved object's secret and stamp `secret_rotated_at`; the old one stops working once this commits."""
    plain = assign_new_secret(obj, generate)
    obj.secret_rotated_at = timezone.now()
    auto_now = [f.name for f in obj._meta.concrete_fields if getattr(f, "auto_now", False)]
    obj.save(update_fields=["secret_encrypted", "secret_rotated_at", *auto_now])
    return plain
