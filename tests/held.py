"""Every shared lane slot held by other threads, as long batch windows would hold them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from voxhelm import lanes
from voxhelm.config import Config


@contextmanager
def lanes_held(config: Config, *, seconds: float = 30.0) -> Iterator[None]:
    """Hold every non-interactive slot until the block ends (at most ``seconds``)."""
    release = threading.Event()
    taken = [threading.Event() for _ in range(config.lanes.slots)]

    def hold(done: threading.Event) -> None:
        with lanes.admit(config.lanes, lanes.NON_INTERACTIVE):
            done.set()
            release.wait(seconds)

    holders = [threading.Thread(target=hold, args=(done,)) for done in taken]
    for holder in holders:
        holder.start()
    assert all(done.wait(10) for done in taken)
    try:
        yield
    finally:
        release.set()
        for holder in holders:
            holder.join()
