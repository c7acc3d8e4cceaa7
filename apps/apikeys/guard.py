"""Per-request bookkeeping for signed requests, in one Redis round trip.

One pipeline answers everything the hot path needs from shared state:
- the key's cache generation (bumped on every change, so all processes drop a stale cached key),
- the replay guard (SET NX on the signature for the timestamp window),
- the per-key rate-limit counter (fixed one-minute windows),
- whether this process should record `last_used_at` (at most once a minute per key).

Failed verifications are counted apart, per key id and per client address, in the same fixed windows:
they cost a round trip of their own, which only failures (and large bodies, checked before reading) pay.

Without Redis (the embedded default) the same answers come from process memory, which is
correct for the single web process the run command then starts.
"""

import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import redis

from apps.core.redis import get_redis

PREFIX = "rtcstack:apikey:"
LAST_USED_INTERVAL_SECONDS = 60
RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Verdict:
    generation: int
    first_seen: bool = True
    request_count: int = 0
    window_resets_in: int = 0
    touch_last_used: bool = False


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed verifications in the current window, for one key id and for one client address."""

    key: int
    address: int
    window_resets_in: int


class Guard(Protocol):
    def generation(self, key_id: str) -> int: ...

    def bump(self, key_id: str) -> None: ...

    def check(self, key_id: str, signature: str, *, window: int, rate_limited: bool) -> Verdict: ...

    def failures(self, key_id: str, address: str) -> Failures: ...

    def record_failure(self, key_id: str | None, address: str) -> Failures: ...


def _rate_window(now: float) -> tuple[int, int]:
    """The start of the fixed window `now` falls in, and the seconds until the next one."""
    second = int(now)
    start = second - second % RATE_WINDOW_SECONDS
    return start, start + RATE_WINDOW_SECONDS - second


def _failure_counters(key_id: str | None, address: str, window_start: int) -> tuple[str | None, str]:
    key = f"fail:key:{key_id}:{window_start}" if key_id is not None else None
    return key, f"fail:addr:{address}:{window_start}"


# One server-side script, so the hot path costs a single command (cheaper than a pipeline of five).
CHECK_SCRIPT = """
local generation = redis.call('GET', KEYS[1])
local first_seen = redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[1])
local touch = redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[2])
local count = 0
if ARGV[3] == '1' then
  count = redis.call('INCR', KEYS[4])
  if count == 1 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
end
return {tonumber(generation) or 0, first_seen and 1 or 0, touch and 1 or 0, count}
"""


class RedisGuard:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.script = client.register_script(CHECK_SCRIPT)

    def generation(self, key_id: str) -> int:
        return int(self.client.get(f"{PREFIX}gen:{key_id}") or 0)

    def bump(self, key_id: str) -> None:
        self.client.incr(f"{PREFIX}gen:{key_id}")

    def check(self, key_id: str, signature: str, *, window: int, rate_limited: bool) -> Verdict:
        window_start, resets_in = _rate_window(time.time())
        generation, first_seen, touch, count = self.script(
            keys=[
                f"{PREFIX}gen:{key_id}",
                f"{PREFIX}seen:{signature}",
                f"{PREFIX}used:{key_id}",
                f"{PREFIX}rate:{key_id}:{window_start}",
            ],
            args=[window, LAST_USED_INTERVAL_SECONDS, int(rate_limited), RATE_WINDOW_SECONDS + 1],
        )
        return Verdict(
            generation=generation,
            first_seen=bool(first_seen),
            touch_last_used=bool(touch),
            request_count=count,
            window_resets_in=resets_in,
        )

    def failures(self, key_id: str, address: str) -> Failures:
        window_start, resets_in = _rate_window(time.time())
        key, addr = _failure_counters(key_id, address, window_start)
        key_count, addr_count = self.client.mget(PREFIX + key, PREFIX + addr)
        return Failures(int(key_count or 0), int(addr_count or 0), resets_in)

    def record_failure(self, key_id: str | None, address: str) -> Failures:
        window_start, resets_in = _rate_window(time.time())
        counters = [PREFIX + name for name in _failure_counters(key_id, address, window_start) if name]
        pipeline = self.client.pipeline(transaction=False)
        for name in counters:
            pipeline.incr(name)
            pipeline.expire(name, RATE_WINDOW_SECONDS + 1)
        counts = pipeline.execute()[::2]
        return Failures(counts[0] if key_id is not None else 0, counts[-1], resets_in)


class MemoryGuard:
    """The embedded default: same semantics, one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._expiring: dict[str, float] = {}
        self._counters: dict[str, int] = {}

    def generation(self, key_id: str) -> int:
        return self._generations.get(key_id, 0)

    def bump(self, key_id: str) -> None:
        with self._lock:
            self._generations[key_id] = self._generations.get(key_id, 0) + 1

    def _set_nx(self, name: str, ttl: float, now: float) -> bool:
        if self._expiring.get(name, 0) > now:
            return False
        self._expiring[name] = now + ttl
        return True

    def _increment(self, counter: str, window_start: int) -> int:
        """Called with the lock held; a new window's first counter drops the last window's."""
        if counter not in self._counters:
            self._counters = {k: v for k, v in self._counters.items() if k.endswith(f":{window_start}")}
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return self._counters[counter]

    def check(self, key_id: str, signature: str, *, window: int, rate_limited: bool) -> Verdict:
        now = time.time()
        window_start, resets_in = _rate_window(now)
        with self._lock:
            if len(self._expiring) > 100_000:
                self._expiring = {k: t for k, t in self._expiring.items() if t > now}
            first_seen = self._set_nx(f"seen:{signature}", window, now)
            touch = self._set_nx(f"used:{key_id}", LAST_USED_INTERVAL_SECONDS, now)
            count = 0
            if rate_limited:
                count = self._increment(f"rate:{key_id}:{window_start}", window_start)
        return Verdict(
            generation=self.generation(key_id),
            first_seen=first_seen,
            touch_last_used=touch,
            request_count=count,
            window_resets_in=resets_in,
        )

    def failures(self, key_id: str, address: str) -> Failures:
        window_start, resets_in = _rate_window(time.time())
        key, addr = _failure_counters(key_id, address, window_start)
        return Failures(self._counters.get(key, 0), self._counters.get(addr, 0), resets_in)

    def record_failure(self, key_id: str | None, address: str) -> Failures:
        window_start, resets_in = _rate_window(time.time())
        key, addr = _failure_counters(key_id, address, window_start)
        with self._lock:
            key_count = self._increment(key, window_start) if key else 0
            addr_count = self._increment(addr, window_start)
        return Failures(key_count, addr_count, resets_in)


_memory_guard = MemoryGuard()


@cache
def _redis_guard(client: redis.Redis) -> RedisGuard:
    return RedisGuard(client)


def get_guard() -> Guard:
    client = get_redis()
    return _redis_guard(client) if client is not None else _memory_guard
