"""Bench section ``ros``: the sim_node <-> policy_node loop over ROS 2 against the same loop in one process.

Policy: a freshly initialised actor of the ``cpu`` training preset (Lattice, network ``small``:
504 -> 256 -> 256 -> 80 for ``legs``), saved as a checkpoint that both the policy node and the offline
loop load; motion ``myosuite_walk_a`` of the default library, looped (the policy node does not reset the
simulation at motion starts here: parameter ``sim_node`` empty).

* offline: ``GoalTracker.observe`` (the policy node's observation), ``mean_action`` and ``MuscleSim.step``
  in this process: what the two nodes compute, without messages;
* lockstep: real ``sim_node`` and ``policy_node``, composed in one component container as the launch
  files run them, and as two processes (joint and muscle states on, as launched: they are built when
  someone subscribes). Each window resets the paused sim, resumes it and reads
  its step counter (``~/step`` reports it) until ``steps`` steps; this process subscribes to nothing
  meanwhile. Windows alternate with offline runs from the same reset state, so each pair sees the
  same machine load and computes the same trajectory (lockstep equals offline); the ratio is the
  median of the pairs. CPU time per step (both nodes, /proc/PID/stat) is reported beside it;
* realtime: the same container at 30 Hz, as launched (stepping thread at SCHED_FIFO where allowed) and
  with normal scheduling; the period of /kinesis/sim_state is taken from the publisher's own source
  timestamps (``MessageInfo``), so it is the sim node's jitter, not this subscriber's;
* memory: peak RSS (VmHWM) of the container and of the two node processes before they are stopped.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from kinesis.launch import interrupt_group, private_ros_environment

EMBODIMENT = "legs"
MOTION = "myosuite_walk_a"
CONTROL_RATE_HZ = 30.0
SIM = "kinesis_sim_node.sim_node"
POLICY = "kinesis_policy_node.policy_node"
CONTAINER = "kinesis_sim_node.component_container"
SIM_PLUGIN = "kinesis_sim_node.sim_node.SimNode"
POLICY_PLUGIN = "kinesis_policy_node.policy_node.PolicyNode"
TIMEOUT_S = 60.0
POLL_S = 0.02
WARM_UP_STEPS = 100
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def make_checkpoint(folder: Path) -> Path:
    """A random actor of the ``cpu`` training preset for ``EMBODIMENT``, saved as ``folder/model.pth``."""
    import torch

    from kinesis_policy_node.tracking import GoalTracker
    from kinesis_training import save_checkpoint
    from kinesis_training.config import load_config
    from kinesis_training.presets import build_actor, build_critic, get_preset

    torch.manual_seed(0)
    tracker = GoalTracker(EMBODIMENT, "imitation", [], {})
    config = load_config("cpu")
    preset = get_preset(config.network)
    obs_dim, action_dim = tracker.layout.full_size, tracker.model.nu
    path = folder / "model.pth"
    save_checkpoint(path, build_actor(config.actor, obs_dim, action_dim, preset), build_critic(obs_dim, preset), epoch=0, frame=0)
    return path


class OfflineLoop:
    """The nodes' computation in one process: observe -> mean_action -> step, from the model's default state."""

    def __init__(self, checkpoint: Path) -> None:
        from kinesis_policy_node.tracking import GoalTracker
        from kinesis_tasks import MuscleSim, load_embodiment
        from kinesis_tasks.motions import load_library
        from kinesis_training import load_policy

        self.policy = load_policy(checkpoint)
        self.tracker = GoalTracker(EMBODIMENT, "imitation", [load_library("default")[MOTION]], {})
        self.sim = MuscleSim(load_embodiment(EMBODIMENT), control_mode="target_length")

    def run(self, steps: int) -> dict:
        """Control steps/s and CPU ms per step of ``steps`` steps after a reset (step 0 restarts the tracker)."""
        self.sim.reset()
        data = self.sim.data
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(steps):
            result = self.tracker.observe(data.qpos, data.sensordata, data.time, k, qvel=data.qvel)
            self.sim.step(np.clip(self.policy.mean_action(result.obs), -1.0, 1.0))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"control_steps_per_s": steps / wall, "cpu_ms_per_step": 1000.0 * cpu / steps}


class _Observer:
    """An rclpy node on the bench's private domain: services of the sim node, source stamps of its states."""

    def __init__(self, domain_id: int, processes: dict[str, subprocess.Popen]) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.processes = processes
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("kinesis_bench_ros", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.clients: dict = {}

    def spin_until(self, done, what: str, timeout: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.005)

    def call(self, srv_type, name: str, request, retry_after: float = 1.0):
        """The response to ``request``, asked again every ``retry_after`` s: a service reported ready may not
        have matched its response writer yet (Fast DDS), and then the first response is lost."""
        client = self.clients.get(name)
        if client is None:
            client = self.clients[name] = self.node.create_client(srv_type, name)
        self.spin_until(client.service_is_ready, f"service {name}")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            future = client.call_async(request)
            try:
                self.spin_until(future.done, f"response of {name}", timeout=retry_after)
                return future.result()
            except TimeoutError:
                client.remove_pending_request(future)
                if time.monotonic() > deadline:
                    raise

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@contextmanager
def _running(clock: str, checkpoint: Path, log_dir: Path, sim_params: tuple[str, ...] = (), composed: bool = True):
    """(observer, processes, logs): sim_node (``clock``; lockstep: paused) and policy_node, answering,
    ``composed`` in one component container (as launched) or as two processes; all stopped at exit."""
    from std_srvs.srv import SetBool

    from kinesis_msgs.msg import TrackingStatus
    from kinesis_msgs.srv import Reset

    domain_id, env = private_ros_environment(range(201, 233))
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    with ExitStack() as stack:
        def start(name: str, module: str, args: list[str]) -> None:
            logs[name] = log_dir / f"{name}_{clock}_{domain_id}.log"
            with logs[name].open("w") as log:
                process = subprocess.Popen([sys.executable, "-P", "-m", module, *args],
                                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            processes[name] = process
            stack.callback(interrupt_group, process, 10.0)

        observer = _Observer(domain_id, processes)
        stack.callback(observer.close)
        answered = []  # subscribed before the policy starts: it publishes /kinesis/tracking only when subscribed
        subscription = observer.node.create_subscription(TrackingStatus, "/kinesis/tracking", answered.append, 10)
        sim = [f"embodiment:={EMBODIMENT}", f"clock:={clock}", f"control_rate_hz:={CONTROL_RATE_HZ}", *sim_params]
        # No resets at motion starts (sim_node empty): the windows count the sim's steps from their own reset.
        policy = [f"embodiment:={EMBODIMENT}", "task:=imitation", f"checkpoint:={checkpoint}", f"motion:={MOTION}",
                  "sim_node:=''"]
        if composed:  # the policy starts with the sim: no pause needed
            start("control_container", CONTAINER, ["--load", SIM_PLUGIN, *_ros_params(sim), "--load", POLICY_PLUGIN, *_ros_params(policy)])
        else:
            start("sim_node", SIM, ["--ros-args", *_ros_params(sim)])
            if clock == "lockstep":
                observer.call(SetBool, "/sim_node/pause", SetBool.Request(data=True))
            start("policy_node", POLICY, ["--ros-args", *_ros_params(policy)])
        deadline = time.monotonic() + TIMEOUT_S
        while not answered:
            try:
                observer.spin_until(lambda: answered, "the policy node's first answer", timeout=5.0)
            except TimeoutError:  # the answer went out before this subscription matched: ask again
                if time.monotonic() > deadline:
                    raise
                if clock == "lockstep":
                    observer.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1))
        observer.node.destroy_subscription(subscription)
        if composed and clock == "lockstep":
            observer.call(SetBool, "/sim_node/pause", SetBool.Request(data=True))
        yield observer, processes, logs


def _ros_params(params: list[str]) -> list[str]:
    return [a for p in params for a in ("-p", p)]


def peak_rss_of(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time of a process (all threads), s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15 of stat(5)


def lockstep_window(observer: _Observer, processes: dict[str, subprocess.Popen], steps: int) -> dict:
    """Reset the paused sim, run ``steps`` lockstep steps, pause: control steps/s and both nodes' CPU ms per step."""
    from std_srvs.srv import SetBool

    from kinesis_msgs.srv import Reset, Step

    query = Step.Request(n=0)  # when running, ~/step refuses to step and reports the current step
    observer.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1))
    cpu = sum(cpu_seconds_of(p.pid) for p in processes.values())
    start = time.perf_counter()
    observer.call(SetBool, "/sim_node/pause", SetBool.Request(data=False))
    step = 0
    while step < steps:
        time.sleep(POLL_S)
        step = observer.call(Step, "/sim_node/step", query).step
    wall = time.perf_counter() - start
    observer.call(SetBool, "/sim_node/pause", SetBool.Request(data=True))
    cpu = sum(cpu_seconds_of(p.pid) for p in processes.values()) - cpu
    return {"control_steps_per_s": step / wall, "cpu_ms_per_step": 1000.0 * cpu / step}


def lockstep_vs_offline(checkpoint: Path, steps: int, repeats: int, log_dir: Path, composed: bool = True) -> dict:
    """Paired offline runs and lockstep windows (see the module docstring), medians, and the nodes' peak RSS."""
    offline = OfflineLoop(checkpoint)
    pairs = []
    with _running("lockstep", checkpoint, log_dir, composed=composed) as (observer, processes, _):
        offline.run(WARM_UP_STEPS), lockstep_window(observer, processes, WARM_UP_STEPS)  # first calls, caches
        for _ in range(repeats):
            pairs.append((offline.run(steps), lockstep_window(observer, processes, steps)))
        rss = {name: peak_rss_of(process.pid) for name, process in processes.items()}

    def median(which: int, key: str) -> float:
        return statistics.median(pair[which][key] for pair in pairs)

    return {
        "offline_control_steps_per_s": median(0, "control_steps_per_s"),
        "lockstep_control_steps_per_s": median(1, "control_steps_per_s"),
        "ratio": statistics.median(ros["control_steps_per_s"] / off["control_steps_per_s"] for off, ros in pairs),
        "offline_cpu_ms_per_step": median(0, "cpu_ms_per_step"),
        "lockstep_cpu_ms_per_step": median(1, "cpu_ms_per_step"),
        "pairs": [{"offline": off, "lockstep": ros} for off, ros in pairs],
        "peak_rss_mib": rss,
    }


def realtime_jitter(checkpoint: Path, periods: int, log_dir: Path, sim_params: tuple[str, ...] = ()) -> dict:
    """Period statistics of /kinesis/sim_state at CONTROL_RATE_HZ from the publisher's source timestamps."""
    from rclpy.qos import qos_profile_sensor_data

    from kinesis_msgs.msg import SimState

    stamps: list[int] = []
    with _running("realtime", checkpoint, log_dir, sim_params) as (observer, processes, logs):
        observer.node.create_subscription(SimState, "/kinesis/sim_state", lambda _, info: stamps.append(info["source_timestamp"]),
                                          qos_profile_sensor_data, raw=True)
        observer.spin_until(lambda: len(stamps) > periods, f"{periods} periods", timeout=periods / CONTROL_RATE_HZ + TIMEOUT_S)
        rss = {name: peak_rss_of(process.pid) for name, process in processes.items()}
    periods_ms = np.diff(np.asarray(stamps[: periods + 1], dtype=np.int64)) / 1e6
    error = np.abs(periods_ms - 1000.0 / CONTROL_RATE_HZ)
    return {
        "rate_hz": CONTROL_RATE_HZ,
        "periods": len(periods_ms),
        "period_mean_ms": float(periods_ms.mean()),
        "jitter_p50_ms": float(np.percentile(error, 50)),
        "jitter_p99_ms": float(np.percentile(error, 99)),
        "jitter_max_ms": float(error.max()),
        "scheduling": _scheduling(logs["control_container"].read_text()),
        "peak_rss_mib": rss,
    }


def _scheduling(sim_log: str) -> str:
    """The realtime loop's scheduling as the sim node logged it ("SCHED_FIFO priority 10", "normal scheduling ...")."""
    ready = next((line for line in sim_log.splitlines() if "ready:" in line), "")
    return ready.partition(" Hz (")[2][:-1] or "unknown"


def measure(quick: bool) -> dict:
    from kinesis_sim_node.spin import executor_name

    steps, repeats, periods = (150, 1, 60) if quick else (1500, 5, 900)
    with tempfile.TemporaryDirectory(prefix="kinesis_bench_ros_") as folder:
        folder = Path(folder)
        checkpoint = make_checkpoint(folder)
        lockstep = lockstep_vs_offline(checkpoint, steps, repeats, folder)  # as launched: one container
        separate = lockstep_vs_offline(checkpoint, steps, repeats, folder, composed=False)
        realtime = realtime_jitter(checkpoint, periods, folder)  # as launched: SCHED_FIFO stepping thread if allowed
        normal = realtime_jitter(checkpoint, periods, folder, ("realtime_priority:=0",))
    containers = (lockstep["peak_rss_mib"], realtime["peak_rss_mib"], normal["peak_rss_mib"])
    return {
        "lockstep_control_steps_per_s": lockstep["lockstep_control_steps_per_s"],
        "offline_control_steps_per_s": lockstep["offline_control_steps_per_s"],
        "lockstep_over_offline": lockstep["ratio"],
        "lockstep_two_processes_control_steps_per_s": separate["lockstep_control_steps_per_s"],
        "lockstep_two_processes_over_offline": separate["ratio"],
        "realtime_period_jitter_p99_ms": realtime["jitter_p99_ms"],
        "realtime_period_jitter_p99_ms_normal_scheduling": normal["jitter_p99_ms"],
        "control_container_peak_rss_mib": max(rss["control_container"] for rss in containers),
        "sim_node_peak_rss_mib": separate["peak_rss_mib"]["sim_node"],
        "policy_node_peak_rss_mib": separate["peak_rss_mib"]["policy_node"],
        "executor": executor_name(),
        "embodiment": EMBODIMENT,
        "steps": steps,
        "lockstep": lockstep,
        "lockstep_two_processes": separate,
        "realtime": realtime,
        "realtime_normal_scheduling": normal,
    }


def tables(results: dict) -> list:
    from rich.table import Table

    loop = Table(title=f"ROS 2 lockstep loop ({results['embodiment']}, random cpu-preset Lattice, {results['executor']} executor; "
                       f"medians of {len(results['lockstep']['pairs'])} paired runs of {results['steps']} steps)")
    for column in ("sim + policy", "offline steps/s", "lockstep steps/s", "lockstep / offline", "offline CPU ms/step",
                   "nodes CPU ms/step", "peak RSS MiB"):
        loop.add_column(column, justify="right")
    for label, key, rss in (("one container (as launched)", "lockstep", f"{results['control_container_peak_rss_mib']:.0f}"),
                            ("two processes", "lockstep_two_processes",
                             f"sim {results['sim_node_peak_rss_mib']:.0f}, policy {results['policy_node_peak_rss_mib']:.0f}")):
        ls = results[key]
        loop.add_row(label, f"{ls['offline_control_steps_per_s']:.0f}", f"{ls['lockstep_control_steps_per_s']:.0f}",
                     f"{100 * ls['ratio']:.0f}%", f"{ls['offline_cpu_ms_per_step']:.2f}", f"{ls['lockstep_cpu_ms_per_step']:.2f}", rss)
    period = Table(title=f"realtime {results['realtime']['rate_hz']:g} Hz: |period - 1/rate| of /kinesis/sim_state (publisher stamps)")
    for column in ("stepping thread", "periods", "p50 ms", "p99 ms", "max ms"):
        period.add_column(column, justify="right")
    for key in ("realtime", "realtime_normal_scheduling"):
        rt = results[key]
        period.add_row(rt["scheduling"], str(rt["periods"]), f"{rt['jitter_p50_ms']:.2f}", f"{rt['jitter_p99_ms']:.2f}",
                       f"{rt['jitter_max_ms']:.2f}")
    return [loop, period]
