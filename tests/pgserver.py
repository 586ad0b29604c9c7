"""A real PostgreSQL server for tests: Debian's ``postgresql`` package, a throwaway data
directory, loopback only.

``initdb`` and ``postgres`` refuse to run as root, so when the tests run as root they run
as the ``postgres`` user (``runuser``), in a directory under the system temporary folder
that this user may enter. Durability is switched off (fsync, synchronous commit): the data
is thrown away after the session anyway.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"


def find_binary(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, or in Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def available() -> bool:
    if find_binary("initdb") is None or find_binary("postgres") is None:
        return False
    if os.geteuid() != 0:
        return True
    try:
        import pwd

        pwd.getpwnam(SUPERUSER)
    except KeyError:
        return False
    return shutil.which("runuser") is not None


@dataclass
class PgServer:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database; returns its ``DATABASE_URL``."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # "smart" shutdown; fast enough without clients
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(timeout: float = 60) -> PgServer:
    """initdb a temporary cluster and start ``postgres`` on a free loopback port."""
    initdb, postgres = find_binary("initdb"), find_binary("postgres")
    if initdb is None or postgres is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="voxhelm-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (root, sockets):
            shutil.chown(path, SUPERUSER, SUPERUSER)
    subprocess.run(
        _as_postgres(
            [initdb, "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = (root / "postgres.log").open("wb")
    process = subprocess.Popen(
        _as_postgres(
            [
                postgres,
                "-D",
                str(data),
                "-k",
                str(sockets),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PgServer(process, port, root)
    deadline = time.monotonic() + timeout
    import psycopg

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited early:\n{(root / 'postgres.log').read_text()}")
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(server.url(), connect_timeout=2).close()
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("postgres did not start")
