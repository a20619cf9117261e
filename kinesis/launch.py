"""Run the processes of a ROS 2 YAML launch file (read by ``kinesis.launch_file``).

A launch argument ``duration`` (s, > 0) stops the launch after that long.
Each process gets its own process group. Stopping sends SIGINT to every group, then SIGTERM
after ``sigint_timeout``, then SIGKILL after ``sigterm_timeout``; a second Ctrl-C skips to the
next signal. The launch stops when a process exits with a non-zero status (the exit status of the
launch is then that process's, 128 + N for signal N), when an ``on_exit: shutdown`` process
exits, on Ctrl-C/SIGTERM, or after ``duration``; it ends when all processes have exited.
Processes left in an exited process's group are killed, and children die with the runner
(SIGTERM through PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import ctypes
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import TextIO

from kinesis.launch_file import LaunchPlan, ProcessSpec

POLL_S = 0.05


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell exit status (128 + N for a process killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class _Child:
    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen) -> None:
        self.spec, self.popen, self.reader = spec, popen, None
        self.returncode: int | None = None


class Launcher:
    """Starts the processes of a plan, prefixes their output and stops them (see the module doc)."""

    def __init__(self, processes: tuple[ProcessSpec, ...], *, out: TextIO | None = None,
                 sigint_timeout: float = 5.0, sigterm_timeout: float = 5.0) -> None:
        self.processes, self.out = processes, out or sys.stdout
        self.timeouts = (sigint_timeout, sigterm_timeout)
        self.lock = threading.Lock()
        self.children: list[_Child] = []
        self.stop_signals = 0  # SIGINT/SIGTERM received by the launcher
        self.stage = 0  # 0 running, then 1/2/3 after SIGINT/SIGTERM/SIGKILL went out
        self.stage_time = 0.0

    def say(self, name: str, line: str) -> None:
        with self.lock:
            self.out.write(f"[{name}] {line}\n")
            self.out.flush()

    def run(self, duration: float = 0.0) -> int:
        """Run until all processes exit; return 0, or the exit status of the first failed process."""
        handlers = self._install_signal_handlers()
        status = 0
        try:
            status = self._start_all()
            deadline = time.monotonic() + duration if duration > 0 else None
            handled_signals = 0
            while any(child.returncode is None for child in self.children):
                for child in self.children:
                    if child.returncode is None and child.popen.poll() is not None:
                        status = self._reaped(child, status)
                if self.stop_signals > handled_signals:
                    handled_signals = self.stop_signals
                    self._escalate("interrupted")
                if deadline is not None and time.monotonic() >= deadline and self.stage == 0:
                    self._escalate(f"duration of {duration:g} s reached")
                if self.stage in (1, 2) and time.monotonic() - self.stage_time > self.timeouts[self.stage - 1]:
                    self._escalate("timed out")
                time.sleep(POLL_S)
        finally:
            for child in self.children:
                _kill_group(child.popen.pid, signal.SIGKILL)
                if child.returncode is None:
                    child.popen.wait()
                if child.reader is not None:
                    child.reader.join(timeout=1.0)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return status

    def _start_all(self) -> int:
        for spec in self.processes:
            try:
                popen = subprocess.Popen(spec.cmd, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            except OSError as error:
                self.say("launch", f"cannot start {spec.name}: {error}")
                self._escalate(f"{spec.name} did not start")
                return 127
            self.children.append(_Child(spec, popen))
            self.say("launch", f"started {spec.name} (pid {popen.pid}): {shlex.join(spec.cmd)}")
        for child in self.children:  # readers start after the last fork
            child.reader = threading.Thread(target=self._forward, args=(child,), daemon=True)
            child.reader.start()
        return 0

    def _forward(self, child: _Child) -> None:
        for raw in iter(child.popen.stdout.readline, b""):
            self.say(child.spec.name, raw.decode(errors="replace").rstrip("\n"))
        child.popen.stdout.close()

    def _reaped(self, child: _Child, status: int) -> int:
        child.returncode = child.popen.returncode
        _kill_group(child.popen.pid, signal.SIGKILL)  # whatever it left behind
        if child.reader is not None:
            child.reader.join(timeout=1.0)
        self.say("launch", f"{child.spec.name} exited with status {exit_status(child.returncode)}")
        if self.stage == 0 and child.returncode != 0:
            self._escalate(f"{child.spec.name} failed")
            return status or exit_status(child.returncode)
        if self.stage == 0 and child.spec.shutdown_on_exit:
            self._escalate(f"{child.spec.name} exited (on_exit: shutdown)")
        return status

    def _escalate(self, reason: str) -> None:
        if self.stage >= 3:
            return
        self.stage += 1
        self.stage_time = time.monotonic()
        signum = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)[self.stage - 1]
        running = [child for child in self.children if child.returncode is None]
        if running:
            self.say("launch", f"{reason}: sending {signum.name} to {', '.join(child.spec.name for child in running)}")
        for child in running:
            _kill_group(child.popen.pid, signum)

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum, frame) -> None:
            self.stop_signals += 1

        return {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}


def run(plan: LaunchPlan, *, out: TextIO | None = None, sigint_timeout: float = 5.0, sigterm_timeout: float = 5.0) -> int:
    """Run every process of ``plan`` (for ``plan.duration`` s if > 0); return the launch's exit status."""
    return Launcher(plan.processes, out=out, sigint_timeout=sigint_timeout, sigterm_timeout=sigterm_timeout).run(plan.duration)


def private_ros_environment(domains: range = range(1, 233)) -> tuple[int, dict[str, str]]:
    """(domain id, environment) for a private ROS graph (a test, a benchmark): ``os.environ`` with a random
    ROS_DOMAIN_ID of ``domains``, discovery limited to this host and unbuffered Python output."""
    domain_id = random.Random(os.getpid() ^ time.time_ns()).randrange(domains.start, domains.stop)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    return domain_id, env


def interrupt_group(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop a process started with ``start_new_session=True`` as Ctrl-C would: SIGINT to its process
    group, SIGKILL if it has not exited after ``timeout`` s; waits for it."""
    if process.poll() is None:
        _kill_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGKILL)
            process.wait()


def _kill_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the launcher dies (Linux), so nothing is orphaned."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
