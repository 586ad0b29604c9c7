"""The HTTP server: uvicorn's h11 protocol with deadlines for slow clients and a connection cap.

uvicorn closes a connection that idles between requests, but not one that sends half a
request head and then nothing, nor one that trickles its body a byte every few seconds; a
thousand such sockets use up the process's file descriptors, and then nobody is served.
Here:

- a request head must be complete within ``header_timeout`` seconds of the connection (or
  of the previous response) — otherwise the connection is closed;
- a body must arrive at ``body_min_rate`` bytes a second or more, judged over windows of
  ``BODY_WINDOW`` seconds, while the server is reading it (a paused read is not the
  client's fault) — otherwise the connection is closed and the app sees a disconnect;
- at most ``max_connections`` connections stay open, kept below the descriptor limit: past
  the cap, the connections that have waited longest for a request head are closed (a moment
  later, so that a newcomer's head is read first; past a hard cap, at once); a newcomer is
  answered 503 only past the hard cap when every other connection is busy;
- "socket.accept() out of system resource" and its kin are logged at most once per
  ``ACCEPT_LOG_INTERVAL`` seconds, with the count of those left out.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

logger = logging.getLogger("voxhelm.http")

BODY_WINDOW = 10.0  # seconds over which a body's rate is judged
WATCH_INTERVAL = 0.5  # seconds between looks at every connection
TRIM_DELAY = 0.02  # seconds between passing the cap and closing the longest-waiting
ACCEPT_LOG_INTERVAL = 10.0
DESCRIPTOR_RESERVE = 256
"""Descriptors kept free for everything but HTTP connections: model files, the database,
temporary files, Wyoming connections, subprocess pipes."""
DESCRIPTOR_TARGET = 65536
"""The soft descriptor limit asked for at start (never above the hard limit)."""
BUSY_BODY = (
    b'{"error":{"message":"The server has too many open connections; try again shortly.",'
    b'"type":"service_unavailable_error","param":null,"code":"too_many_connections"}}'
)


@dataclass(frozen=True)
class Limits:
    """What a connection may cost: see the module docstring and :func:`connection_limits`."""

    header_timeout: float
    body_min_rate: int
    max_connections: int
    hard_connections: int


def raise_descriptor_limit(target: int = DESCRIPTOR_TARGET) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``target`` (bounded by the hard limit, and
    by macOS's per-process maximum); returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if sys.platform == "darwin":
        wanted = min(wanted, 10240)  # OPEN_MAX: setrlimit refuses more
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def listen_backlog(descriptor_limit: int) -> int:
    """The listen backlog: a sixth of the descriptors left after the reserve.

    asyncio accepts up to this many connections in one go before any of them reaches
    :class:`GuardedProtocol`, and the connections it closes (refused, or over the cap) let go
    of their descriptors only on the next turn of the loop, when the next burst may be in: two
    bursts count against the descriptors. A short queue, though, drops the SYNs of a flood,
    and a healthy client arriving then waits a whole retransmission (1 s) to be let in.
    """
    return max(32, min(2048, (descriptor_limit - DESCRIPTOR_RESERVE) // 6))


def connection_limits(configured: int, descriptor_limit: int) -> tuple[int, int]:
    """(cap, hard cap) on open connections. Over the cap the longest-waiting connections are
    closed; over the hard cap a newcomer is refused. The hard cap keeps the reserve and two
    accept bursts below the descriptor limit; the cap sits one more burst below it."""
    backlog = listen_backlog(descriptor_limit)
    hard = max(32, descriptor_limit - DESCRIPTOR_RESERVE - 2 * backlog)
    return max(16, min(configured, hard - backlog)), hard


class GuardedState(ServerState):
    """uvicorn's shared server state, plus the limits every connection reads."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self.refused_busy = 0
        self.closed_slow_heads = 0
        self.closed_slow_bodies = 0
        self.evicted = 0
        self.trim_scheduled = False


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol that remembers since when it waits for a head, and how fast
    its current body arrives."""

    server_state: GuardedState

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        now = time.monotonic()
        self.waiting_since = now
        self.window_start = now
        self.window_bytes = 0
        state = self.server_state
        if len(self.connections) > state.limits.hard_connections and not _evict_one(state, self):
            state.refused_busy += 1
            _answer_busy(transport)
            self.connections.discard(self)
        elif len(self.connections) > state.limits.max_connections and not state.trim_scheduled:
            # Not at once: a newcomer's head, already in its socket, is read first, so a
            # healthy client is past waiting (and safe) by the time room is made.
            state.trim_scheduled = True
            self.loop.call_later(TRIM_DELAY, _make_room, state)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            self.window_bytes += len(data)
        super().data_received(data)

    def on_response_complete(self) -> None:
        self.waiting_since = time.monotonic()
        super().on_response_complete()

    def waits_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def check(self, now: float) -> None:
        """Close the connection if it missed its head deadline or its body is too slow."""
        limits = self.server_state.limits
        if self.transport.is_closing():
            return
        if self.waits_for_head():
            if now - self.waiting_since > limits.header_timeout:
                self.server_state.closed_slow_heads += 1
                self.transport.close()
            return
        if self.conn.their_state is not h11.SEND_BODY or self.flow.read_paused:
            self.window_start, self.window_bytes = now, 0
            return
        if now - self.window_start >= BODY_WINDOW:
            if self.window_bytes < limits.body_min_rate * (now - self.window_start):
                self.server_state.closed_slow_bodies += 1
                self.transport.close()
                return
            self.window_start, self.window_bytes = now, 0


def _waiting_for_head(
    state: GuardedState, newcomer: GuardedProtocol | None = None
) -> list[GuardedProtocol]:
    """The open connections (but ``newcomer``) that wait for a request head."""
    return [
        c
        for c in state.connections
        if isinstance(c, GuardedProtocol)
        and c is not newcomer
        and not c.transport.is_closing()
        and c.waits_for_head()
    ]


def _make_room(state: GuardedState) -> None:
    """Close the connections that have waited longest for a request head, down to the cap."""
    state.trim_scheduled = False
    excess = len(state.connections) - state.limits.max_connections
    if excess <= 0:
        return
    waiting = sorted(_waiting_for_head(state), key=lambda c: c.waiting_since)
    for connection in waiting[:excess]:
        state.evicted += 1
        connection.transport.close()


def _evict_one(state: GuardedState, newcomer: GuardedProtocol) -> bool:
    """Past the hard cap: close the connection that has waited longest for a head, now (the
    scheduled trim may run late on a busy loop while a flood goes on, and a healthy
    newcomer must not pay for that); False when every other connection is busy."""
    waiting = _waiting_for_head(state, newcomer)
    if not waiting:
        return False
    state.evicted += 1
    min(waiting, key=lambda c: c.waiting_since).transport.close()
    return True


def _answer_busy(transport: asyncio.Transport) -> None:
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"retry-after: 2\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(BUSY_BODY)
    )
    transport.write(head + BUSY_BODY)
    transport.close()


class AcceptErrorFilter:
    """An event loop exception handler that logs accept failures at most once per interval
    (under descriptor exhaustion asyncio reports one per attempt) and passes the rest on."""

    def __init__(self, interval: float = ACCEPT_LOG_INTERVAL) -> None:
        self.interval = interval
        self.last = -interval
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith("socket.accept()"):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.last < self.interval:
            self.suppressed += 1
            return
        error = context.get("exception")
        logger.error(
            "accepting connections failed: %s (%d more such errors in the last %.0f s)",
            error,
            self.suppressed,
            now - self.last if self.last >= 0 else 0,
        )
        self.last, self.suppressed = now, 0


class GuardedServer(uvicorn.Server):
    """uvicorn's server with :class:`GuardedProtocol` connections and a watcher task."""

    def __init__(
        self, config: uvicorn.Config, limits: Limits, on_ready: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self.server_state = GuardedState(limits)
        self.on_ready = on_ready
        self._watcher: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        asyncio.get_running_loop().set_exception_handler(AcceptErrorFilter())
        await super().startup(sockets=sockets)
        if self.started:
            self._watcher = asyncio.create_task(self._watch())
            self.on_ready()

    async def _watch(self) -> None:
        while not self.should_exit:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            for connection in list(self.server_state.connections):
                if isinstance(connection, GuardedProtocol):
                    connection.check(now)


def build_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn config serving ``app`` over :class:`GuardedProtocol`."""
    return uvicorn.Config(app, http=GuardedProtocol, **options)
