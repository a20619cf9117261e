"""The wall clock of sim_node's realtime mode: a callback at absolute deadlines, on its own thread.

Deadlines are t0 + k * period on CLOCK_MONOTONIC, so a late wake-up never delays the next one; when
a call overruns whole periods, those ticks are skipped and counted in ``missed``. ``priority`` > 0
asks Linux for SCHED_FIFO at that priority for this thread only (as ros2_control's controller manager
does for its loop): then the load of other processes does not delay the wake-ups (docs/performance.md,
"ROS 2": p99 period error 5 ms -> 0.5 ms on two busy cores). Without the permission (EPERM) the loop
runs with normal scheduling and ``priority_error`` says why.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


class PeriodicThread:
    """Runs ``callback()`` every ``period`` seconds of wall-clock time until ``stop()``."""

    def __init__(self, period: float, callback: Callable[[], None], *, priority: int = 0, name: str = "periodic") -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        if not 0 <= priority <= 99:
            raise ValueError(f"priority must be 0 (normal scheduling) or a SCHED_FIFO priority 1..99, got {priority}")
        self.period, self.callback, self.priority = period, callback, priority
        self.missed = 0
        self.priority_error: str | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def scheduling(self) -> str:
        """How the thread is scheduled, for the log."""
        if self.priority and self.priority_error is None:
            return f"SCHED_FIFO priority {self.priority}"
        return "normal scheduling" + (f" ({self.priority_error})" if self.priority_error else "")

    def start(self) -> None:
        """Start ticking; returns once the thread runs (and ``priority_error`` is known)."""
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """Stop after the current call, if any, and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        if self.priority:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))  # 0: this thread
            except (OSError, AttributeError) as error:
                self.priority_error = f"SCHED_FIFO priority {self.priority} refused ({error})"
        self._started.set()
        deadline = time.monotonic()
        while True:
            deadline += self.period
            late = time.monotonic() - deadline
            if late > 0:  # overran: skip the ticks already gone
                skipped = int(late // self.period) + 1
                self.missed += skipped
                deadline += skipped * self.period
            if self._stop.wait(deadline - time.monotonic()):
                return
            self.callback()
