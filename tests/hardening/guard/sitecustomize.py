"""Loaded by every Python process the hardening suite starts (``PYTHONPATH`` points here).

A server under attack runs in its own process, where the pytest socket guard
(``tests/netguard.py``) cannot see it. This module gives that process the same guard and a
fake resolver, both at the I/O boundary:

* ``socket.connect``: loopback and Unix sockets only. A connection to the public stand-in
  address is rerouted to a loopback listener (so a fetch that correctly connects to the
  address it checked can be observed); any other address, or a name, is refused and
  recorded in ``HARDENING_GUARD_LOG``.
* ``socket.getaddrinfo``: names come from the ``HARDENING_DNS`` table (there is no DNS
  here, and the attacks need names that resolve to private addresses or rebind); numeric
  hosts and ``localhost`` go to the real resolver; any other name is recorded and fails.
  A ``{"first": [...], "then": [...]}`` entry answers ``first`` once, then ``then``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from typing import Any

_LOG = os.environ.get("HARDENING_GUARD_LOG", "")
_DNS: dict[str, Any] = json.loads(os.environ.get("HARDENING_DNS", "{}"))
# "ADDRESS=HOST:PORT": connections to ADDRESS (any port) go to the loopback HOST:PORT.
_STANDIN = os.environ.get("HARDENING_STANDIN", "")
_lock = threading.Lock()
_asked: set[str] = set()

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _record(kind: str, target: str) -> None:
    if not _LOG:
        return
    with _lock, open(_LOG, "a", encoding="utf-8") as log:  # noqa: PTH123 - no pathlib this early
        log.write(json.dumps({"kind": kind, "target": target, "pid": os.getpid()}) + "\n")


def _standin() -> tuple[str, tuple[str, int]] | None:
    if not _STANDIN:
        return None
    address, _, target = _STANDIN.partition("=")
    host, _, port = target.rpartition(":")
    return address, (host, int(port))


def _route(sock: socket.socket, address: Any) -> Any:
    if sock.family == socket.AF_UNIX:
        return address
    host = str(address[0])
    try:
        ip = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        _record("blocked", f"name {host}")
        raise ConnectionRefusedError(f"hardening guard: connect to a name {host!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return address
    standin = _standin()
    if standin is not None and str(ip) == standin[0]:
        _record("standin", f"{ip}:{address[1]}")
        return standin[1]
    _record("blocked", f"{ip}:{address[1]}")
    raise ConnectionRefusedError(f"hardening guard: connect outside loopback {host!r}")


def _connect(self: socket.socket, address: Any) -> None:
    target = _route(self, address)
    if target is not address and self.family == socket.AF_INET6:
        target = (f"::ffff:{target[0]}", target[1], 0, 0)
    _real_connect(self, target)


def _connect_ex(self: socket.socket, address: Any) -> int:
    try:
        target = _route(self, address)
    except ConnectionRefusedError:
        return 111
    return _real_connect_ex(self, target)


def _answer(host: str, port: Any, entry: Any) -> list[Any]:
    if isinstance(entry, dict):
        with _lock:
            first = host not in _asked
            _asked.add(host)
        entry = entry["first"] if first else entry["then"]
    port_number = int(port or 0)
    results = []
    for address in entry:
        if ":" in address:
            results.append(
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_number, 0, 0))
            )
        else:
            results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
    return results


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name == "localhost":
        return _real_getaddrinfo(host, port, *args, **kwargs)
    try:
        ipaddress.ip_address(str(name).split("%")[0])
    except ValueError:
        pass
    else:
        return _real_getaddrinfo(host, port, *args, **kwargs)
    entry = _DNS.get(str(name).lower().rstrip("."))
    if entry is None:
        _record("lookup", str(name))
        raise socket.gaierror(socket.EAI_NONAME, "hardening guard: unknown name")
    return _answer(str(name).lower().rstrip("."), port, entry)


if _LOG:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
