"""Moves the agent's final segments from the rooms' Redis streams into PostgreSQL, whether or not anyone watches.

One consumer group (`speech.livestore.PERSIST_GROUP`) over every room stream in `ACTIVE_ROOMS`. An entry is
acknowledged and deleted only after its row is committed, so a persister killed mid-batch loses nothing:
on restart it first re-reads its own pending entries, and entries left pending by a consumer that never
came back are claimed after `claim_idle_ms`. Rows are keyed by the agent's segment id, so a redelivered
entry is never stored twice; an entry PostgreSQL cannot take goes to the dead letters (`live.persist`).
Redis can lose its data (a restart without AOF): housekeeping, and every reconnection, first rewrite the
session records, groups and registrations of the sessions PostgreSQL says are live (`live.restore_sessions`).
"""

import logging
import time
from collections.abc import Callable

import redis
from django.db import DatabaseError, close_old_connections

from speech.livestore import ACTIVE_ROOMS, PERSIST_GROUP, segments_key, session_key

from . import live

logger = logging.getLogger(__name__)

RETIRE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('XLEN', KEYS[2]) == 0 then
    redis.call('SREM', KEYS[3], ARGV[1])
    redis.call('DEL', KEYS[2])
    return 1
end
return 0
"""


class Persister:
    def __init__(
        self,
        client: redis.Redis,
        consumer: str,
        *,
        block_ms: int = 1000,
        batch: int = 200,
        claim_idle_ms: int = 30_000,
        housekeeping_seconds: float = 10.0,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.block_ms = block_ms
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.housekeeping_seconds = housekeeping_seconds
        self._grouped: set[str] = set()
        self._next_housekeeping = 0.0
        self._retire_script: redis.commands.core.Script | None = None

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Persist until `should_stop()`; Redis or database outages are waited out, never fatal."""
        delay = 0.5
        while not should_stop():
            try:
                close_old_connections()
                self.step()
                delay = 0.5
            except (redis.RedisError, DatabaseError) as error:
                logger.warning("Live persister: %s; retrying in %.1f s", error.__class__.__name__, delay)
                self._grouped.clear()
                self._next_housekeeping = 0.0  # Redis may come back empty: restore before reading again
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def step(self) -> int:
        """One round: housekeeping when due, then block up to `block_ms` for new entries. Returns entries stored."""
        housekeeping = time.monotonic() >= self._next_housekeeping
        if housekeeping:
            live.restore_sessions(self.client)
            self._next_housekeeping = time.monotonic() + self.housekeeping_seconds
        rooms = sorted(name.decode() for name in self.client.smembers(ACTIVE_ROOMS))
        if not rooms:
            time.sleep(self.block_ms / 1000)
            return 0
        for room in rooms:
            if room not in self._grouped:
                live.open_stream(self.client, room)
                self._grouped.add(room)
        stored = 0
        if housekeeping:
            stored += self.recover(rooms)
            rooms = [room for room in rooms if not self.retire(room)]
        if not rooms:
            return stored
        rooms_by_key = {segments_key(room): room for room in rooms}
        streams = dict.fromkeys(rooms_by_key, ">")
        for key, entries in self.client.xreadgroup(
            PERSIST_GROUP, self.consumer, streams, count=self.batch, block=self.block_ms
        ):
            stored += live.persist(self.client, rooms_by_key[key.decode()], entries)
        return stored

    def recover(self, rooms: list[str]) -> int:
        """Entries delivered but never acknowledged: this consumer's own (a restart), then stale ones of others."""
        stored = 0
        for room in rooms:
            key = segments_key(room)
            while True:
                own = self.client.xreadgroup(PERSIST_GROUP, self.consumer, {key: "0"}, count=self.batch)
                entries = own[0][1] if own else []
                if not entries:
                    break
                stored += live.persist(self.client, room, entries)
            start = "0-0"
            while True:
                start, claimed, *_ = self.client.xautoclaim(
                    key, PERSIST_GROUP, self.consumer, self.claim_idle_ms, start, count=self.batch
                )
                stored += live.persist(self.client, room, claimed)
                if start in (b"0-0", "0-0"):
                    break
        return stored

    def retire(self, room: str) -> bool:
        """Stop reading a room once its session record has expired (well after stop) and its stream is empty.

        Atomic, so a session starting in the same room at that moment keeps its stream and set membership.
        """
        if not self._retire(keys=[session_key(room), segments_key(room), ACTIVE_ROOMS], args=[room]):
            return False
        self._grouped.discard(room)
        return True

    @property
    def _retire(self) -> redis.commands.core.Script:
        if self._retire_script is None:
            self._retire_script = self.client.register_script(RETIRE_SCRIPT)
        return self._retire_script
