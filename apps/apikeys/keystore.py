"""A per-process cache of resolved API keys, so a hot key costs no database query.

Every change to a key bumps its generation in the guard (Redis when configured); each request
reads the current generation in the same round trip as the replay guard, and a mismatch reloads
the key. Revocation and rotation therefore take effect at once in every process.
"""

import threading
from dataclasses import dataclass

from apps.core.crypto import decrypt_secret

from .guard import Guard
from .models import ApiKey, Scope

MAX_CACHED_KEYS = 10_000
KEY_ID_MAX_LENGTH = ApiKey._meta.get_field("key_id").max_length


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    pk: int
    key_id: str
    name: str
    secret: bytes
    scopes: frozenset[str]
    active: bool
    expires_at: float | None
    rate_limit_per_minute: int
    generation: int

    def allows(self, scope: str) -> bool:
        return Scope.ALL in self.scopes or scope in self.scopes


_lock = threading.Lock()
_cache: dict[str, ResolvedKey] = {}


def _load(key_id: str, guard: Guard, generation: int | None = None) -> ResolvedKey | None:
    # Read the generation before the row: a change committed in between is then seen as stale next time.
    current = guard.generation(key_id) if generation is None else generation
    row = ApiKey.objects.filter(key_id=key_id).first()
    if row is None:
        return None
    resolved = ResolvedKey(
        pk=row.pk,
        key_id=row.key_id,
        name=row.name,
        secret=decrypt_secret(row.secret_encrypted).encode(),
        scopes=frozenset(row.scopes),
        active=row.active,
        expires_at=row.expires_at.timestamp() if row.expires_at else None,
        rate_limit_per_minute=row.rate_limit_per_minute,
        generation=current,
    )
    with _lock:
        if len(_cache) >= MAX_CACHED_KEYS:
            _cache.clear()
        _cache[key_id] = resolved
    return resolved


def lookup(key_id: str, guard: Guard) -> ResolvedKey | None:
    cached = _cache.get(key_id)
    if cached is not None:
        return cached
    # No stored key id is longer or holds a NUL (which PostgreSQL cannot even compare): don't ask the database.
    if len(key_id) > KEY_ID_MAX_LENGTH or "\x00" in key_id:
        return None
    return _load(key_id, guard)


def reload(key_id: str, guard: Guard, generation: int) -> ResolvedKey | None:
    return _load(key_id, guard, generation)


def invalidate(key_id: str, guard: Guard) -> None:
    with _lock:
        _cache.pop(key_id, None)
    guard.bump(key_id)


def clear() -> None:
    with _lock:
        _cache.clear()
