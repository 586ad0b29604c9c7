"""The lane scheduler across real processes: slots, crash recovery, priority, timeouts, garbage."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_config
from voxhelm.errors import Busy
from voxhelm.lanes import INTERACTIVE, NON_INTERACTIVE, LaneScheduler

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    """A ``tests.lane_child`` process; its stdout lines say what it did."""

    process: subprocess.Popen[bytes]

    def line(self, timeout: float = 10.0) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"no output from the lane child within {timeout}s")
        return self.process.stdout.readline().decode().strip()

    def expect(self, word: str, timeout: float = 10.0) -> list[str]:
        """The fields of the next line, which must start with ``word``."""
        fields = self.line(timeout).split()
        assert fields and fields[0] == word, f"expected {word!r}, got {fields!r}"
        return fields

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()


Spawn = Callable[..., Child]


@pytest.fixture
def lane_dir(tmp_path: Path) -> Path:
    return tmp_path / "lanes"


@pytest.fixture
def spawn(lane_dir: Path) -> Iterator[Spawn]:
    children: list[Child] = []

    def start(
        lane: str, timeout: float, hold: str = "stdin", slots: int = 1, reserved: int = 0
    ) -> Child:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.lane_child",
                str(lane_dir),
                lane,
                str(timeout),
                hold,
                str(slots),
                str(reserved),
            ],
            cwd=ROOT,
            bufsize=0,  # unbuffered: select() below must see every line still unread
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        child = Child(process)
        children.append(child)
        child.expect("waiting")
        return child

    yield start
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait()


def wait_for_interactive_waiter(lane_dir: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiters = lane_dir / "waiters"
        # Names start with the lane's rank: "0-" interactive, "1-" non-interactive (whose
        # name holds "-interactive-" too, so that cannot tell them apart).
        if waiters.is_dir() and any(p.name.startswith("0-") for p in waiters.iterdir()):
            return
        time.sleep(0.01)
    raise AssertionError("the interactive waiter never registered")


def test_it_admits_only_one_process_to_a_single_slot(spawn: Spawn) -> None:
    holder = spawn(NON_INTERACTIVE, 5)
    holder.expect("admitted")
    assert spawn(NON_INTERACTIVE, 0.5, "0").line() == "busy"
    assert spawn(INTERACTIVE, 0.5, "0").line() == "busy"
    holder.release()
    holder.expect("released")
    spawn(NON_INTERACTIVE, 5, "0").expect("admitted")


def test_it_admits_as_many_processes_as_there_are_slots(spawn: Spawn) -> None:
    first = spawn(NON_INTERACTIVE, 5, slots=2)
    second = spawn(NON_INTERACTIVE, 5, slots=2)
    slots = {first.expect("admitted")[2], second.expect("admitted")[2]}
    assert slots == {"0", "1"}
    assert spawn(NON_INTERACTIVE, 0.5, "0", slots=2).line() == "busy"


def test_a_reserved_slot_lets_interactive_work_run_beside_batch_work(spawn: Spawn) -> None:
    batch = spawn(NON_INTERACTIVE, 5, slots=1, reserved=1)
    assert batch.expect("admitted")[2] == "0"
    voice = spawn(INTERACTIVE, 5, slots=1, reserved=1)
    assert voice.expect("admitted", timeout=5)[2] == "1"  # at once, beside the batch work
    # The reserved slot is never given to batch work, and holds one voice at a time.
    assert spawn(NON_INTERACTIVE, 0.5, "0", slots=1, reserved=1).line() == "busy"
    assert spawn(INTERACTIVE, 0.5, "0", slots=1, reserved=1).line() == "busy"
    voice.release()
    voice.expect("released")
    spawn(INTERACTIVE, 5, "0", slots=1, reserved=1).expect("admitted")


def test_it_frees_the_slot_of_a_killed_holder_at_once(spawn: Spawn, lane_dir: Path) -> None:
    holder = spawn(NON_INTERACTIVE, 5)
    holder.expect("admitted")
    holder.process.kill()  # SIGKILL: no cleanup code runs
    holder.process.wait()
    started = time.monotonic()
    with LaneScheduler(lane_dir).admit(NON_INTERACTIVE, timeout=5):
        waited = time.monotonic() - started
    assert waited < 0.5


def test_an_interactive_waiter_goes_before_an_earlier_non_interactive_one(
    spawn: Spawn, lane_dir: Path
) -> None:
    holder = spawn(NON_INTERACTIVE, 5)
    holder.expect("admitted")
    batch = spawn(NON_INTERACTIVE, 20, "0.3")
    time.sleep(0.3)  # the batch waiter has been polling for a while
    voice = spawn(INTERACTIVE, 20, "0.3")
    wait_for_interactive_waiter(lane_dir)
    holder.release()
    voice_admitted = float(voice.expect("admitted")[1])
    voice_released = float(voice.expect("released")[1])
    batch_admitted = float(batch.expect("admitted")[1])
    assert voice_admitted < batch_admitted
    assert batch_admitted >= voice_released


def test_a_holder_that_asks_again_queues_behind_earlier_waiters(
    spawn: Spawn, lane_dir: Path
) -> None:
    scheduler = LaneScheduler(lane_dir)
    rounds: list[float] = []
    with scheduler.admit(NON_INTERACTIVE, timeout=5):
        other = spawn(NON_INTERACTIVE, 20, "0.5")
        time.sleep(0.2)  # the other process is waiting
    # Released; asking again at once, as a batch worker does between windows.
    with scheduler.admit(NON_INTERACTIVE, timeout=20):
        rounds.append(time.time())
    other_admitted = float(other.expect("admitted")[1])
    other_released = float(other.expect("released")[1])
    assert other_admitted < rounds[0]
    assert rounds[0] >= other_released


def test_a_killed_interactive_waiter_does_not_hold_back_other_work(
    spawn: Spawn, lane_dir: Path
) -> None:
    holder = spawn(NON_INTERACTIVE, 5)
    holder.expect("admitted")
    voice = spawn(INTERACTIVE, 30, "0")
    wait_for_interactive_waiter(lane_dir)
    voice.process.kill()
    voice.process.wait()
    holder.release()
    holder.expect("released")
    started = time.monotonic()
    with LaneScheduler(lane_dir).admit(NON_INTERACTIVE, timeout=5):
        waited = time.monotonic() - started
    assert waited < 0.5
    assert not list((lane_dir / "waiters").glob("*-interactive-*"))


def test_a_wait_times_out_with_busy(spawn: Spawn, lane_dir: Path) -> None:
    holder = spawn(NON_INTERACTIVE, 5)
    holder.expect("admitted")
    started = time.monotonic()
    with pytest.raises(Busy) as caught, LaneScheduler(lane_dir).admit(INTERACTIVE, timeout=0.3):
        pass
    assert 0.3 <= time.monotonic() - started < 2
    assert caught.value.code == "server_busy"
    assert caught.value.retry_after >= 1
    # The interactive waiter that gave up is gone, so batch work is not held back by it.
    assert not list((lane_dir / "waiters").glob("*-interactive-*"))


def _garbage_files(lane_dir: Path) -> None:
    waiters = lane_dir / "waiters"
    waiters.mkdir(parents=True)
    (lane_dir / "holder.json").write_text("{not json")  # the reference's wedge
    (lane_dir / "slot-0.lock").write_bytes(os.urandom(512))
    (waiters / "0-00000000000000000001-interactive-1-dead.lock").write_text("nobody holds me")
    (waiters / ".tmp-leftover").write_bytes(b"")
    (waiters / "garbage.json").write_bytes(os.urandom(64))


def _garbage_where_locks_belong(lane_dir: Path) -> None:
    (lane_dir / "slot-0.lock").mkdir(parents=True)
    (lane_dir / "slot-0.lock" / "inside").write_text("x")
    (lane_dir / "waiters").mkdir()
    (lane_dir / "waiters" / "0-00000000000000000002-interactive-2-ab.lock").mkdir()
    (lane_dir / "slot-1.lock").symlink_to("/etc/passwd")


def _waiters_is_a_file(lane_dir: Path) -> None:
    lane_dir.mkdir(parents=True)
    (lane_dir / "waiters").write_text("not a directory")


@pytest.mark.parametrize(
    "make_garbage", [_garbage_files, _garbage_where_locks_belong, _waiters_is_a_file]
)
def test_garbage_in_the_lane_directory_does_not_wedge_admission(
    spawn: Spawn, lane_dir: Path, make_garbage: Callable[[Path], None]
) -> None:
    make_garbage(lane_dir)
    scheduler = LaneScheduler(lane_dir, slots=2)
    for lane in (NON_INTERACTIVE, INTERACTIVE):
        started = time.monotonic()
        with scheduler.admit(lane, timeout=2):
            assert time.monotonic() - started < 0.5
    # The repaired lock files still exclude other processes.
    holders = [spawn(NON_INTERACTIVE, 5, slots=2), spawn(NON_INTERACTIVE, 5, slots=2)]
    for holder in holders:
        holder.expect("admitted")
    with pytest.raises(Busy), scheduler.admit(INTERACTIVE, timeout=0.2):
        pass
    assert Path("/etc/passwd").read_text()  # a symbolic link was moved, never followed


def test_threads_of_one_process_exclude_each_other(lane_dir: Path) -> None:
    scheduler = LaneScheduler(lane_dir)
    admitted = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with scheduler.admit(NON_INTERACTIVE, timeout=5):
            admitted.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert admitted.wait(5)
    with pytest.raises(Busy), scheduler.admit(INTERACTIVE, timeout=0.2):
        pass
    release.set()
    thread.join()
    with scheduler.admit(INTERACTIVE, timeout=1) as ticket:
        assert ticket.slot == 0


def test_it_is_not_reentrant(lane_dir: Path) -> None:
    scheduler = LaneScheduler(lane_dir)
    with (
        scheduler.admit(NON_INTERACTIVE, timeout=1),
        pytest.raises(RuntimeError, match="not re-entrant"),
        scheduler.admit(INTERACTIVE, timeout=1),
    ):
        pass
    with scheduler.admit(INTERACTIVE, timeout=1):  # and the slot was given back
        pass


def test_it_rejects_an_unknown_lane(lane_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown lane"), LaneScheduler(lane_dir).admit("vip", 1):
        pass


def test_a_disabled_scheduler_admits_at_once_and_touches_no_files(lane_dir: Path) -> None:
    scheduler = LaneScheduler(lane_dir, enabled=False)
    with scheduler.admit(NON_INTERACTIVE, 0) as first, scheduler.admit(INTERACTIVE, 0) as second:
        assert first.slot is None and second.slot is None
    assert not lane_dir.exists()


def test_it_reads_the_lane_settings_strictly(tmp_path: Path) -> None:
    config = make_config(tmp_path, VOXHELM_LANE_SLOTS="3", VOXHELM_LANE_WAIT_SECONDS="2.5")
    lanes = config.lanes
    assert (lanes.enabled, lanes.slots, lanes.interactive_slots, lanes.wait_seconds) == (
        True,
        3,
        1,
        2.5,
    )
    assert config.lanes.directory == (tmp_path / "var" / "lane-scheduler").resolve()
    bad = make_config(
        tmp_path,
        VOXHELM_LANE_SLOTS="0",
        VOXHELM_LANE_INTERACTIVE_SLOTS="-1",
        VOXHELM_LANE_WAIT_SECONDS="soon",
    )
    assert {p.name for p in bad.problems} == {
        "VOXHELM_LANE_SLOTS",
        "VOXHELM_LANE_INTERACTIVE_SLOTS",
        "VOXHELM_LANE_WAIT_SECONDS",
    }


def _admit_together(scheduler: LaneScheduler, count: int) -> list[BaseException]:
    """Admit ``count`` threads released at the same instant; what they raised."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def admit() -> None:
        start.wait()
        try:
            with scheduler.admit(NON_INTERACTIVE, timeout=5):
                pass
        except BaseException as exc:  # collected for the assertion in the test
            failures.append(exc)

    threads = [threading.Thread(target=admit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_threads_that_start_together_all_find_the_directory(tmp_path: Path) -> None:
    # Each thread prepares the directory on its first admission; none may move away the
    # directory another one has just made (the chunk workers of a fresh server did).
    for round_ in range(20):
        failures = _admit_together(LaneScheduler(tmp_path / f"lanes-{round_}", slots=8), 8)
        assert not failures, f"round {round_}: {failures!r}"
        assert not list(tmp_path.glob(f"lanes-{round_}.bad-*"))
