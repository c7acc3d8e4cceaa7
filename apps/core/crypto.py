"""Encryption of stored secrets (API keys, webhook endpoints) at rest with Fernet (AES + HMAC).

API_KEY_ENCRYPTION_KEYS lists Fernet keys newest first: the first encrypts, all decrypt, so
operators can rotate the encryption key without re-issuing API keys.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

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
