"""Encryption of stored secrets (API keys, webhook endpoints) at rest with Fernet (AES + HMAC).

API_KEY_ENCRYPTION_KEYS lists Fernet keys newest first: the first encrypts, all decrypt, so
operators can rotate the encryption key without re-issuing API keys.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


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
    return _fernet().decrypt(token.encode()).decode()


def reset_cache() -> None:
    _fernet.cache_clear()
