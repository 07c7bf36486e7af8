"""One Redis subscriber per API process for every job event stream, fanning each event out to the streams of its job.

Each stream had a pub/sub connection of its own and polled it twice a second: 200 streams on a running
job were 200 Redis connections, 400 wake-ups a second and every event parsed 200 times, which
slowed every other route 3-8× (issue 19). Here one pattern subscription (`trainserve:jobs:*:events`)
reads each event once, decodes it once, and puts it on the queue of each stream of that job; a
stream waits on its queue, holding nothing else. The job events are a few a second per running job,
so the process reading them all costs little whether anyone listens or not.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_async

from core.bus import decode_event, events_channel

log = logging.getLogger("trainserve.api")
PATTERN = events_channel("*")
QUEUE_LIMIT = 256  # events a stream may fall behind by; past it, it re-reads SQL (Subscription.RESYNC)


@dataclass(frozen=True)
class LiveEvent:
    """One event as the worker published it: its kind, its data, and the data as JSON (encoded once for every stream)."""

    kind: str
    data: dict[str, Any]
    text: str


class LiveChannelLost(Exception):
    """The subscriber's Redis connection broke: the stream carries on by reading SQL."""


class Subscription:
    """One stream's events of one job, from the process's JobEvents."""

    RESYNC = object()  # the stream fell QUEUE_LIMIT events behind and some were dropped: read SQL now

    def __init__(self, hub: "JobEvents", channel: str):
        self.hub, self.channel = hub, channel
        self._events: deque[LiveEvent | None] = deque()  # None: the subscriber's connection broke
        self._waiter: asyncio.Future | None = None
        self.overflowed = False

    async def get(self, timeout_s: float) -> LiveEvent | object | None:
        """The next event within `timeout_s` (None: none came), RESYNC after dropped events; LiveChannelLost."""
        if self.overflowed:
            self.overflowed = False
            return self.RESYNC
        if not self._events:
            # a future and a timer, not asyncio.wait_for's task per wait: 200 streams wait on every event
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        event = self._events.popleft()
        if event is None:
            self._events.appendleft(None)  # lost for good: every later get says so too
            raise LiveChannelLost("the event subscriber lost its Redis connection")
        return event

    def close(self) -> None:
        """Stop receiving (the stream ended)."""
        self.hub.remove(self)

    def put(self, event: LiveEvent | None) -> None:
        if event is not None and len(self._events) >= QUEUE_LIMIT:
            self.overflowed = True  # dropped: the stream reads SQL for what it missed
            return
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class JobEvents:
    """This process's one subscriber to every job's events; `subscribe(job_id)` gives a stream its own queue."""

    def __init__(self, client: redis_async.Redis):
        self.client = client
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._starting = asyncio.Lock()

    async def subscribe(self, job_id: str) -> Subscription | None:
        """A queue of the job's events from now on; None when Redis cannot be reached (the stream polls SQL)."""
        if not await self._running():
            return None
        subscription = Subscription(self, events_channel(job_id))
        self._subscriptions.setdefault(subscription.channel, set()).add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        listeners = self._subscriptions.get(subscription.channel)
        if listeners is not None:
            listeners.discard(subscription)
            if not listeners:
                del self._subscriptions[subscription.channel]

    async def _running(self) -> bool:
        """Start the subscriber (or start it again after its connection broke); False if Redis does not answer."""
        if self._reader is not None and not self._reader.done():
            return True
        async with self._starting:
            if self._reader is not None and not self._reader.done():
                return True
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(PATTERN)  # confirmed before any stream relies on it
            except Exception as exc:  # Redis down: streams poll SQL
                log.warning("job events: no live channel (%s); streams poll SQL", exc)
                return False
            self._pubsub = pubsub
            self._reader = asyncio.get_running_loop().create_task(self._read(pubsub))
            return True

    async def _read(self, pubsub) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None and message.get("type") == "pmessage":
                    self._fan_out(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection broke: every stream falls back to SQL; new ones resubscribe
            log.warning("job events: live channel lost (%s); open streams poll SQL", exc)
            for listeners in self._subscriptions.values():
                for subscription in listeners:
                    subscription.put(None)
            self._subscriptions.clear()
            await _close(pubsub)

    def _fan_out(self, message: dict) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        listeners = self._subscriptions.get(channel)
        if not listeners:
            return
        try:
            kind, data = decode_event(message["data"])
        except (ValueError, KeyError, TypeError):  # not ours: nothing to tell the streams
            return
        event = LiveEvent(kind, data, json.dumps(data, default=str))
        for subscription in tuple(listeners):
            subscription.put(event)

    async def close(self) -> None:
        """Stop the subscriber (the app is stopping)."""
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        if self._pubsub is not None:
            await _close(self._pubsub)


async def _close(pubsub) -> None:
    try:
        await pubsub.aclose()
    except Exception:
        pass
