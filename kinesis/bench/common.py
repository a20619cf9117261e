"""Timing and reporting helpers shared by the bench sections."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable


def median_rate(
    function: Callable[[], None], calls: int, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median calls per second of ``function`` over ``repeats`` timed batches of ``calls`` calls.

    ``clock``: wall time by default; ``time.process_time`` counts only this process's CPU time, which
    other processes sharing the cores do not inflate (throughput per core).
    """
    rates = []
    for _ in range(repeats):
        start = clock()
        for _ in range(calls):
            function()
        rates.append(calls / (clock() - start))
    return statistics.median(rates)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def process_peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of another process ``pid`` so far, MiB."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024.0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (clock-tick resolution, usually 10 ms)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("mujoco", "numpy", "torch", "numba", "myosuite", "ros-kilted-rclpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found
