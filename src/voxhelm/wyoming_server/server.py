"""The Wyoming listener: ``tcp://``, ``unix://`` or ``stdio://``, bounded per connection.

Every connection gets its own :class:`~voxhelm.wyoming_server.handler.SttSession`. The
server protects itself, not just the protocol: at most ``VOXHELM_WYOMING_MAX_CONNECTIONS``
at once — when all are taken, the connection that has waited longest without sending anything
(at least :data:`EVICT_AFTER_SECONDS`) is closed to make room, so idle or abandoned sockets can
never lock Home Assistant out; only when every connection is busy is a new one told so and
closed — a connection silent for
``VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS`` is closed, a peer that does not read what it is
sent is dropped, and whatever goes wrong in one connection closes only that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from wyoming.error import Error
from wyoming.event import Event, async_get_stdin, async_get_stdout

from voxhelm.wyoming_server.handler import SttService
from voxhelm.wyoming_server.protocol import MAX_HEADER_BYTES, ProtocolError, read_event, write_event

logger = logging.getLogger("voxhelm.wyoming")

DRAIN_BYTES = 4 * MAX_HEADER_BYTES  # read and dropped after an error, so the error is seen
DRAIN_SECONDS = 0.5
EVICT_AFTER_SECONDS = 0.25  # silence that makes a connection give way (clients send at once)


class _Connection:
    """One open connection: when it last sent an event, and whether it waits for one."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.waiting_since: float | None = None  # set while waiting for the next event
        self.evicted = False


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # tcp | unix | stdio
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        return f"unix://{self.path}" if self.scheme == "unix" else "stdio://"


def parse_uri(uri: str) -> Endpoint:
    """``tcp://HOST:PORT``, ``unix://PATH`` or ``stdio://``; raises ValueError otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme == "tcp":
        if not parsed.hostname or parsed.port is None:
            raise ValueError("a tcp:// URI needs a host and a port")
        return Endpoint("tcp", host=parsed.hostname, port=parsed.port)
    if parsed.scheme == "unix":
        path = parsed.netloc + parsed.path
        if not path:
            raise ValueError("a unix:// URI needs a socket path")
        return Endpoint("unix", path=path)
    if parsed.scheme == "stdio":
        return Endpoint("stdio")
    raise ValueError("use tcp://HOST:PORT, unix://PATH or stdio://")


class WyomingServer:
    def __init__(self, service: SttService) -> None:
        self.service = service
        wyoming = service.config.wyoming
        self.idle_timeout = wyoming.idle_timeout_seconds
        self.max_connections = wyoming.max_connections
        self._open: set[_Connection] = set()

    @property
    def active(self) -> int:
        return len(self._open)

    async def serve(self, uri: str, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until cancelled (or, for ``stdio://``, until standard input ends)."""
        endpoint = parse_uri(uri)
        if endpoint.scheme == "stdio":
            if on_ready is not None:
                on_ready(str(endpoint))
            await self._serve_stdio()
            return
        if endpoint.scheme == "unix":
            _remove_stale_socket(Path(endpoint.path))
            server = await asyncio.start_unix_server(
                self.connection, path=endpoint.path, limit=MAX_HEADER_BYTES
            )
        else:
            server = await asyncio.start_server(
                self.connection, host=endpoint.host, port=endpoint.port, limit=MAX_HEADER_BYTES
            )
        try:
            async with server:
                if on_ready is not None:
                    on_ready(str(endpoint))
                await server.serve_forever()
        finally:
            if endpoint.scheme == "unix":
                _remove_stale_socket(Path(endpoint.path))

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection to its end; never raises."""
        if self.active >= self.max_connections and not self._evict_idle():
            await self._refuse(writer)
            return
        conn = _Connection(writer)
        self._open.add(conn)
        try:
            await self._converse(reader, writer, self.idle_timeout, conn)
        except Exception:
            if conn.evicted:
                logger.info("wyoming: closed an idle connection to make room")
            else:
                logger.exception("wyoming connection failed")
        finally:
            self._open.discard(conn)
            await _close(reader, writer)

    def _evict_idle(self) -> bool:
        """Close the connection silent longest (if silent long enough); True if one was."""
        now = asyncio.get_running_loop().time()
        waiting = [c for c in self._open if c.waiting_since is not None and not c.evicted]
        if not waiting:
            return False
        victim = min(waiting, key=lambda c: c.waiting_since or now)
        if now - (victim.waiting_since or now) < EVICT_AFTER_SECONDS:
            return False
        victim.evicted = True
        self._open.discard(victim)
        victim.writer.transport.abort()  # its pending read fails; its task cleans up
        return True

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        idle_timeout: float | None,
        conn: _Connection | None = None,
    ) -> bool:
        """Serve one command; True when it ended with a reply (the stream is still in step)."""
        session = self.service.session()
        loop = asyncio.get_running_loop()
        while True:
            try:
                if conn is not None:
                    conn.waiting_since = loop.time()
                event = await asyncio.wait_for(read_event(reader), idle_timeout)
                if conn is not None:
                    conn.waiting_since = None
                reply = None if event is None else await session.handle_event(event)
            except TimeoutError:
                await self._send(writer, Error("Connection idle for too long.", "idle_timeout"))
                return False
            except ConnectionError as exc:
                if conn is not None and conn.evicted:
                    raise  # closed here to make room: connection() says so
                # A client that crashed or lost its network: nothing to answer, and no
                # fault of the server.
                logger.info("wyoming: the client reset the connection (%s)", exc)
                return False
            except ProtocolError as exc:
                logger.info("wyoming: closing a connection: %s (%s)", exc.message, exc.code)
                await self._send(writer, exc)
                return False
            if reply is None:
                return False
            for outgoing in reply.events:
                await self._send(writer, outgoing)
            if reply.stream is not None:
                await self._send_stream(writer, reply.stream)
            if reply.close:
                return True

    async def _send(
        self, writer: asyncio.StreamWriter, item: Event | Error | ProtocolError
    ) -> bool:
        """Send one event; False when the peer is gone or does not read."""
        event = item if isinstance(item, Event) else item.event()
        try:
            await write_event(writer, event, self.idle_timeout)
        except (OSError, TimeoutError, RuntimeError):
            # The peer is gone or does not read; closing is all that is left to do.
            logger.debug("wyoming: could not send %s", event.type)
            return False
        return True

    async def _send_stream(
        self, writer: asyncio.StreamWriter, events: AsyncIterator[Event]
    ) -> None:
        """Send each event as it is produced; a peer that is gone stops the producer."""
        try:
            async for event in events:
                if not await self._send(writer, event):
                    break
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        logger.warning("wyoming: refusing a connection: %d are open", self.active)
        error = Error("Too many connections; retry shortly.", "too_many_connections")
        with contextlib.suppress(Exception):
            await write_event(writer, error.event(), 1.0)
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve_stdio(self) -> None:
        # A stdin StreamReader has asyncio's default limit, 64 KiB, which is MAX_HEADER_BYTES.
        # No idle timeout: the parent process decides how long the pipe lives. A finished
        # command starts the next one; a protocol error ends the stream.
        reader = await async_get_stdin()
        writer = await async_get_stdout()
        while await self._converse(reader, writer, None):
            pass


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after a short drain: closing with unread input resets the connection, and the
    peer would then lose the ``error`` event sent just before."""
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        drained = 0
        while drained < DRAIN_BYTES and (left := deadline - loop.time()) > 0:
            chunk = await asyncio.wait_for(reader.read(MAX_HEADER_BYTES), left)
            if not chunk:
                break
            drained += len(chunk)
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by an earlier run; never anything that is not a socket."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
