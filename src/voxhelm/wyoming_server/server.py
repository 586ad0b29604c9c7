"""The Wyoming listener: ``tcp://``, ``unix://`` or ``stdio://``, bounded per connection.

Every connection gets its own :class:`~voxhelm.wyoming_server.handler.SttSession`. The
server protects itself, not just the protocol: at most ``VOXHELM_WYOMING_MAX_CONNECTIONS``
at once (more are told so and closed), a connection silent for
``VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS`` is closed, a peer that does not read what it is
sent is dropped, and whatever goes wrong in one connection closes only that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
from collections.abc import Callable
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
        self.active = 0

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
        if self.active >= self.max_connections:
            await self._refuse(writer)
            return
        self.active += 1
        try:
            await self._converse(reader, writer, self.idle_timeout)
        except Exception:
            logger.exception("wyoming connection failed")
        finally:
            self.active -= 1
            await _close(reader, writer)

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        idle_timeout: float | None,
    ) -> bool:
        """Serve one command; True when it ended with a reply (the stream is still in step)."""
        session = self.service.session()
        while True:
            try:
                event = await asyncio.wait_for(read_event(reader), idle_timeout)
                reply = None if event is None else await session.handle_event(event)
            except TimeoutError:
                await self._send(writer, Error("Connection idle for too long.", "idle_timeout"))
                return False
            except ProtocolError as exc:
                logger.info("wyoming: closing a connection: %s (%s)", exc.message, exc.code)
                await self._send(writer, exc)
                return False
            if reply is None:
                return False
            for outgoing in reply.events:
                await self._send(writer, outgoing)
            if reply.close:
                return True

    async def _send(
        self, writer: asyncio.StreamWriter, item: Event | Error | ProtocolError
    ) -> None:
        event = item if isinstance(item, Event) else item.event()
        try:
            await write_event(writer, event, self.idle_timeout)
        except (OSError, TimeoutError, RuntimeError):
            # The peer is gone or does not read; closing is all that is left to do.
            logger.debug("wyoming: could not send %s", event.type)

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
