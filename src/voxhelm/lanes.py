"""The lane scheduler: admission to the host's inference slots, interactive work first.

Every process of one host that runs inference (``voxhelm serve``, ``voxhelm worker``,
``voxhelm-wyoming-stt``) shares ``VOXHELM_LANE_SLOTS`` slots through lock files in
``VOXHELM_LANE_SCHEDULER_DIR``, plus ``VOXHELM_LANE_INTERACTIVE_SLOTS`` more that only
interactive work may use. Two lanes compete for them:

* ``interactive``: Wyoming STT and TTS, where a person waits for an answer;
* ``non-interactive``: synchronous HTTP, batch jobs and the operator console.

How it works, and why it cannot wedge:

* A slot is held with an exclusive ``flock`` on ``slot-N.lock``. The kernel drops the lock
  when its holder exits, however it exits, so a crashed holder's slot is free at once; no
  slot is ever taken back by age, so two inferences never overlap in one slot.
* A waiter registers itself by holding an exclusive ``flock`` on its own file under
  ``waiters/``, named so that names sort in the order of service: interactive before
  non-interactive, then first come, first served. Only the first live waiter tries the
  slots, and it gives a slot back at once if a better waiter turned up while it was taking
  it. So an interactive request never waits behind queued batch work, and a batch worker
  that releases its slot between windows cannot take it straight back from an HTTP request
  that has been waiting. A dead waiter's file is unlocked, so it counts for nothing and is
  removed.
* Nothing is parsed from any file: state is only which files are locked. Garbage in the
  directory (stray files, a directory or a symbolic link where a lock file belongs) is
  ignored or moved aside.
* Every wait has a deadline; when it passes, :class:`~voxhelm.errors.Busy` is raised
  (HTTP answers 429 with Retry-After, Wyoming an ``error`` event).

Admission is *not re-entrant*: a thread that holds a slot and asks again would wait for
itself, so :func:`admit` raises RuntimeError instead. Take admission around one engine
call, never around code that may take it again. Long work is split (see
:mod:`voxhelm.stt.windows`) so that an interactive request waits at most one piece.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voxhelm import metrics
from voxhelm.config import LanesConfig
from voxhelm.errors import Busy, ServiceUnavailable

logger = logging.getLogger("voxhelm.lanes")

INTERACTIVE = "interactive"
NON_INTERACTIVE = "non-interactive"
LANES = (INTERACTIVE, NON_INTERACTIVE)

# How often a waiter looks again. Interactive waiters look more often: their wait is what
# a person notices. Both are a handful of system calls per look.
POLL_SECONDS = {INTERACTIVE: 0.005, NON_INTERACTIVE: 0.02}
RETRY_AFTER_SECONDS = 5

_LOCK_SUFFIX = ".lock"
_RANK = {INTERACTIVE: 0, NON_INTERACTIVE: 1}
_WAITER_NAME = re.compile(r"[01]-\d{20}-[a-z-]+-\d+-[0-9a-f]+\.lock")
_held = threading.local()


@dataclass(frozen=True)
class Ticket:
    """Proof of admission: the lane, the slot held and how long the wait was."""

    lane: str
    slot: int | None  # None when the scheduler is disabled
    waited_seconds: float


class LaneScheduler:
    """Admission to inference slots kept as lock files in ``directory``.

    ``slots`` are shared by both lanes; ``interactive_slots`` more are reserved for the
    interactive lane, so that a voice command runs beside batch work instead of waiting
    for its window to end (it then shares the CPU for a moment).
    """

    def __init__(
        self, directory: Path, slots: int = 1, *, interactive_slots: int = 0, enabled: bool = True
    ) -> None:
        if slots < 1 or interactive_slots < 0:
            raise ValueError("slots must be at least 1 and interactive_slots at least 0")
        self.directory = directory
        self.slots = slots
        self.interactive_slots = interactive_slots
        self.enabled = enabled

    @property
    def waiters_dir(self) -> Path:
        return self.directory / "waiters"

    @contextlib.contextmanager
    def admit(self, lane: str, timeout: float) -> Iterator[Ticket]:
        """Hold one slot for the ``with`` block; wait at most ``timeout`` seconds for it.

        Raises :class:`Busy` when no slot was free in time, ValueError for an unknown lane,
        and RuntimeError when this thread already holds a slot (admission is not
        re-entrant).
        """
        if not self._admissible(lane):
            yield Ticket(lane, None, 0.0)
            return
        started = time.monotonic()
        try:
            fd, slot = self._acquire(lane, started + max(timeout, 0.0))
        except Busy:
            metrics.lane_timeouts.labels(lane).inc()
            raise
        ticket = Ticket(lane, slot, time.monotonic() - started)
        metrics.lane_wait.labels(lane).observe(ticket.waited_seconds)
        logger.debug(
            "lane_scheduler admitted lane=%s slot=%d wait_ms=%d pid=%d",
            lane,
            slot,
            round(ticket.waited_seconds * 1000),
            os.getpid(),
        )
        with _holding(ticket, fd):
            yield ticket

    @contextlib.contextmanager
    def spare(self, lane: str) -> Iterator[Ticket | None]:
        """Hold a slot for the ``with`` block only if one is free now, nobody waits ahead
        and no interactive work runs on a reserved slot; yields None otherwise, without
        waiting or counting a timeout.

        For work that may go faster on idle slots but needs none of them: a long
        transcription runs extra windows side by side this way (see
        :mod:`voxhelm.stt.windows`), and gives way to anyone who waits, and to a voice
        command that runs (it would share the cores with one more call).
        """
        if not self._admissible(lane):
            yield Ticket(lane, None, 0.0)
            return
        if self._interactive_running():
            yield None
            return
        try:
            fd, slot = self._acquire(lane, deadline=time.monotonic())
        except Busy:
            yield None
            return
        with _holding(Ticket(lane, slot, 0.0), fd) as ticket:
            yield ticket

    def _admissible(self, lane: str) -> bool:
        """Whether a slot must be taken for ``lane`` (False: the scheduler is off). Raises
        ValueError for an unknown lane, RuntimeError when this thread holds a slot."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; use one of {', '.join(LANES)}")
        if getattr(_held, "ticket", None) is not None:
            raise RuntimeError("lane admission is not re-entrant: this thread holds a slot")
        return self.enabled

    def _interactive_running(self) -> bool:
        """Whether a reserved interactive slot is held (a shared look: microseconds)."""
        self._prepare()
        for slot in range(self.slots, self.slots + self.interactive_slots):
            fd = self._open_slot(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return True
            except BaseException:
                os.close(fd)
                raise
            _unlock(fd)
        return False

    # -- waiting -----------------------------------------------------------------------
    def _acquire(self, lane: str, deadline: float) -> tuple[int, int]:
        self._prepare()
        name = _waiter_name(lane)
        waiter: tuple[int, Path] | None = self._register_waiter(name)
        try:
            while True:
                if waiter is None or not waiter[1].exists():
                    # The directory was cleared under us: queue again, in the same place.
                    stale, waiter = waiter, None
                    if stale is not None:
                        _unregister(*stale)
                    self._prepare()
                    waiter = self._register_waiter(name)
                if self.first_waiter() == name:
                    taken = self._try_slots(lane)
                    if taken is not None:
                        # An interactive waiter may have come between the look and the lock;
                        # it goes first, so give the slot straight back.
                        if self.first_waiter() == name:
                            return taken
                        _unlock(taken[0])
                if time.monotonic() >= deadline:
                    raise Busy(
                        "The server is busy with other speech work; retry shortly.",
                        retry_after=RETRY_AFTER_SECONDS,
                        code="server_busy",
                    )
                time.sleep(POLL_SECONDS[lane])
        finally:
            if waiter is not None:
                _unregister(*waiter)

    def _try_slots(self, lane: str) -> tuple[int, int] | None:
        order = list(range(self.slots))
        if lane == INTERACTIVE:  # the reserved slots first, to leave shared ones to others
            order = list(range(self.slots, self.slots + self.interactive_slots)) + order
        for slot in order:
            fd = self._open_slot(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            return fd, slot
        return None

    def _open_slot(self, slot: int) -> int:
        path = self.directory / f"slot-{slot}{_LOCK_SUFFIX}"
        flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(path, flags, 0o660)
        except OSError as exc:
            # A directory, a symbolic link or a special file where the lock belongs: garbage.
            if exc.errno not in (errno.EISDIR, errno.ELOOP, errno.ENXIO, errno.EACCES):
                raise self._unusable(exc) from exc
            _move_aside(path)
            try:
                return os.open(path, flags, 0o660)
            except OSError as again:
                raise self._unusable(again) from again

    def first_waiter(self) -> str | None:
        """The name of the live waiter to serve next; removes the files of dead ones.

        Waiter names sort in service order: interactive before non-interactive, then by
        arrival. Only files whose owner holds their lock count; anything else is removed
        (or, when it cannot be, ignored).
        """
        try:
            names = [entry.name for entry in self.waiters_dir.iterdir()]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(exc) from exc
        first: str | None = None
        for name in names:
            path = self.waiters_dir / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # gone already, or garbage that cannot be a waiter
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    if _WAITER_NAME.fullmatch(name) and (first is None or name < first):
                        first = name
                    continue
                except OSError:
                    continue
                # Unlocked: its owner is gone (or it never was a waiter). Nobody can be
                # registering under this name, since names are published already locked.
                with contextlib.suppress(OSError):
                    path.unlink()
            finally:
                os.close(fd)
        return first

    def _register_waiter(self, name: str) -> tuple[int, Path]:
        """Publish the waiter file ``name``, locked from the moment its name is visible."""
        for _ in range(10):
            fd, tmp = tempfile.mkstemp(dir=self.waiters_dir, prefix=".tmp-")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                path = self.waiters_dir / name
                Path(tmp).rename(path)
            except FileNotFoundError:
                # Another process cleaned the unlocked temporary file up before the lock.
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
                raise
            return fd, path
        raise ServiceUnavailable("The lane scheduler could not register a waiter.")

    # -- the directory -----------------------------------------------------------------
    def _prepare(self) -> None:
        # Make the directory first and look after: threads and processes that start at
        # the same time all succeed, and only a file or link in the way is moved aside.
        # (Looking first let one of them move a directory another had just made.)
        for path in (self.directory, self.waiters_dir):
            for attempt in range(2):
                try:
                    path.mkdir(parents=True, exist_ok=True)
                except FileExistsError:
                    pass  # not a directory
                except OSError as exc:
                    raise self._unusable(exc) from exc
                if path.is_dir() and not path.is_symlink():
                    break
                if attempt:
                    raise self._unusable(NotADirectoryError(errno.ENOTDIR, "not a directory"))
                _move_aside(path)

    def _unusable(self, exc: OSError) -> ServiceUnavailable:
        logger.error("lane scheduler directory %s is unusable: %s", self.directory, exc)
        return ServiceUnavailable(
            "The lane scheduler cannot work; see the server log.", code="lanes_unavailable"
        )


def _waiter_name(lane: str) -> str:
    """``<rank>-<arrival ns>-<lane>-<pid>-<random>.lock``: sorts in the order of service."""
    return (
        f"{_RANK[lane]}-{time.time_ns():020d}-{lane}-{os.getpid()}-{secrets.token_hex(6)}"
        f"{_LOCK_SUFFIX}"
    )


@contextlib.contextmanager
def _holding(ticket: Ticket, fd: int) -> Iterator[Ticket]:
    """Mark this thread as holding ``ticket``'s slot (locked by ``fd``) for the block."""
    _held.ticket = ticket
    try:
        yield ticket
    finally:
        _held.ticket = None
        _unlock(fd)


def _unlock(fd: int) -> None:
    # Unlock before closing: a process forked meanwhile shares this lock and would keep it.
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _unregister(fd: int, path: Path) -> None:
    # Remove the name before unlocking, so nobody sees the file unlocked and in place.
    with contextlib.suppress(OSError):
        path.unlink()
    _unlock(fd)


def _move_aside(path: Path) -> None:
    aside = path.with_name(f"{path.name}.bad-{secrets.token_hex(4)}")
    logger.warning("lane scheduler: moving unexpected %s aside to %s", path.name, aside.name)
    with contextlib.suppress(FileNotFoundError):
        path.rename(aside)


def scheduler(config: LanesConfig) -> LaneScheduler:
    """The scheduler for ``config`` (one object per directory, slots and switch)."""
    return _scheduler(config.directory, config.slots, config.interactive_slots, config.enabled)


@functools.cache
def _scheduler(directory: Path, slots: int, interactive_slots: int, enabled: bool) -> LaneScheduler:
    # Two threads may both build one at first: a scheduler holds no state but its settings.
    return LaneScheduler(directory, slots, interactive_slots=interactive_slots, enabled=enabled)


def spare(config: LanesConfig, lane: str) -> contextlib.AbstractContextManager[Ticket | None]:
    """``with spare(config, lane) as ticket:`` holds a slot only if one is free now (else
    ``ticket`` is None); see :meth:`LaneScheduler.spare`."""
    return scheduler(config).spare(lane)


def admit(
    config: LanesConfig, lane: str, timeout: float | None = None
) -> contextlib.AbstractContextManager[Ticket]:
    """``with admit(config, "interactive"):`` holds a slot; ``timeout`` defaults to the config."""
    return scheduler(config).admit(lane, config.wait_seconds if timeout is None else timeout)
