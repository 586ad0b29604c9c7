"""A process that takes a lane slot, for the cross-process lane scheduler tests.

``python -m tests.lane_child DIR LANE TIMEOUT HOLD [SLOTS [INTERACTIVE_SLOTS]]`` prints
``waiting``, then ``admitted <epoch> <slot>`` or ``busy``; it holds the slot for HOLD
seconds, or until a line arrives on stdin when HOLD is ``stdin``, and prints
``released <epoch>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from voxhelm.errors import Busy
from voxhelm.lanes import LaneScheduler


def main() -> None:
    directory, lane, timeout, hold = sys.argv[1:5]
    slots = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    reserved = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    scheduler = LaneScheduler(Path(directory), slots, interactive_slots=reserved)
    print("waiting", flush=True)
    try:
        with scheduler.admit(lane, float(timeout)) as ticket:
            print(f"admitted {time.time():.6f} {ticket.slot}", flush=True)
            if hold == "stdin":
                sys.stdin.readline()
            else:
                time.sleep(float(hold))
            print(f"released {time.time():.6f}", flush=True)
    except Busy:
        print("busy", flush=True)


if __name__ == "__main__":
    main()
