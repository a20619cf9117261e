"""`kinesis demo`: the ROS 2 stack end to end, headless.

Runs the ``locomotion`` launch (sim node, policy node, visualization node) in
lockstep on the embedded default motions for --duration seconds once the policy
node answers (then stops it as Ctrl-C does), listens to
/kinesis/tracking, and prints per-motion success and MPJPE. The run is recorded
to an MCAP file that Foxglove opens, and rendered from that file to an mp4 (the
body with its reference keypoints in orange and its tracked bodies in green,
seen by a camera that follows the pelvis; the first --video-seconds of simulated
time, every other control step). Without ``--checkpoint`` the policy is the
bundled policy of the embodiment (``kinesis_tasks.bundled``: the trained walker
for ``legs``); ``--checkpoint hold-pose`` runs the untrained fallback controller
instead (no balance, so tracking fails quickly), as does an embodiment without a
bundled policy (the demo says so). The checkpoint is resolved here, as the policy
node resolves it, and handed to the launch as `bundled`, a file or a fallback's name.

The table means what ``kinesis eval`` means: the policy node starts every motion
from its initial state (it resets the simulation), at frame 0, and ends it when
the mean tracked-body distance exceeds 0.5 m (terminated) or at its last frame
(success unless terminated); then the next motion starts. One row per motion:
control steps after the start, mean MPJPE over them, terminated, success. When
the run lasts long enough for the playlist to wrap around, a motion's first
attempt is shown (in lockstep with a deterministic policy every attempt is the
same); the attempts column counts them. A motion cut off by the end of the run
shows "cut" and does not count in the summary line.

``kinesis demo --sim-only`` skips ROS: the muscle simulation alone, a table and
an mp4 rendered offscreen.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EVERY = 2  # render every other control step (15 fps): software rendering is slow
VIDEO_SIZE = (360, 480)  # height, width
CONTROL_RATE_HZ = 30.0
STARTUP_TIMEOUT_S = 120.0  # the longest the nodes may take to start (the run's time counts from then)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the ROS 2 stack headless: per-motion tracking table, an MCAP and an mp4",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds the stack runs once the policy node answers (start-up not counted; default 20)")
    parser.add_argument("--checkpoint", default="",
                        help="model.pth, kinesis:NAME, or hold-pose / zero-action for a fallback controller "
                             "(default: the bundled policy of the embodiment)")
    parser.add_argument("--embodiment", default="legs", help="legs (80 muscles), legs_abs (86), legs_back (290) or an MJCF path")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for the MCAP and video (default demo_out/)")
    parser.add_argument("--sim-only", action="store_true", help="no ROS: run the muscle simulation alone and render a video")
    parser.add_argument("--seconds", type=float, default=3.0, help="--sim-only: simulated seconds (default 3)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering the mp4")
    parser.add_argument("--video-seconds", type=float, default=15.0,
                        help="simulated seconds of the run rendered to the mp4, from the start (default 15)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_sim_only(args) if args.sim_only else run_ros(args)


# --- the ROS 2 stack ------------------------------------------------------------------------------


def run_ros(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from rich.console import Console

    console = Console(width=120)
    args.out.mkdir(parents=True, exist_ok=True)
    mcap = (args.out / "locomotion.mcap").resolve()
    env = dict(os.environ, ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(random.randint(1, 200))),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(env)
    choice = demo_policy(args)
    command = launch_command(args, mcap, choice)
    console.print(f"policy: {choice.description}")
    console.print(f"[bold]kinesis launch locomotion[/] (lockstep, headless; {args.duration:g} s once the policy runs) ...")
    results = _TrackingListener(order=_playlist_names())
    launch = subprocess.Popen(command, env=env)
    started, stop_at = time.monotonic(), None  # the run lasts --duration from the first /kinesis/tracking message
    try:
        while launch.poll() is None:
            results.spin_once(0.1)
            if stop_at is None and results.attempts.attempts:
                stop_at = time.monotonic() + args.duration
            late = stop_at is None and time.monotonic() - started > STARTUP_TIMEOUT_S
            if late or (stop_at is not None and time.monotonic() >= stop_at):
                console.print(f"no /kinesis/tracking message after {STARTUP_TIMEOUT_S:g} s: stopping" if late
                              else f"{args.duration:g} s run: stopping the launch")
                launch.send_signal(signal.SIGINT)  # kinesis launch stops every node as on Ctrl-C
                break
        launch.wait(timeout=60)
    except KeyboardInterrupt:
        launch.send_signal(signal.SIGINT)
        launch.wait(timeout=30)
    finally:
        results.close()
    console.print(results.table())
    console.print(results.summary())
    if mcap.exists():
        console.print(f"recording: {mcap} ({mcap.stat().st_size / 1e6:.1f} MB)\n"
                      "  open it in Foxglove (app.foxglove.dev or the desktop app): File > Open local file.\n"
                      "  live instead: kinesis launch locomotion, then connect Foxglove to ws://localhost:8765\n"
                      "  (docs/visualization.md).")
        if not args.no_video:
            video = render_recording(mcap, args.out / "locomotion.mp4", args.embodiment, seconds=args.video_seconds,
                                     console=console)
            console.print(f"video: {video.resolve()}" if video is not None else "video: no states in the recording")
    return launch.returncode or 0


def demo_policy(args: argparse.Namespace):
    """The ``PolicyChoice`` of --checkpoint for --embodiment, as the policy node resolves its ``checkpoint``."""
    from kinesis_policy_node.policy_node import policy_choice

    return policy_choice(args.checkpoint, args.embodiment, "target_length")


def launch_command(args: argparse.Namespace, mcap: Path, choice) -> list[str]:
    """The `kinesis launch locomotion` command line of the demo, with the resolved policy."""
    return [sys.executable, "-m", "kinesis.cli", "launch", "locomotion", "headless:=true", "clock:=lockstep",
            f"record:={mcap}", f"embodiment:={args.embodiment}", f"checkpoint:={choice.argument}"]


@dataclass
class Attempt:
    """One attempt at a motion: the TrackingStatus of each state, from the start state (frame 0) on."""

    motion: str
    first_frame: int
    mpjpe_mm: list[float] = field(default_factory=list)
    terminated: bool = False
    ended: bool = False  # terminated, or the next attempt began (the motion reached its end)
    last_frame: int = 0

    @property
    def complete(self) -> bool:
        """Seen from its start to its end (not joined late, not cut off by the end of the run)."""
        return self.ended and self.first_frame == 0

    @property
    def steps(self) -> int:
        """Control steps after the start state, as ``kinesis eval`` counts them."""
        return len(self.mpjpe_mm) - 1

    @property
    def mean_mpjpe_mm(self) -> float:
        """Mean over the states after the start (the start state too when it is the only one), as ``kinesis eval``."""
        errors = self.mpjpe_mm[1:] or self.mpjpe_mm
        return sum(errors) / len(errors)

    @property
    def success(self) -> bool:
        return self.complete and not self.terminated


class Attempts:
    """TrackingStatus messages split into motion attempts: a new attempt begins when the motion changes, the frame
    goes back, or the previous attempt terminated."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def add(self, motion: str, frame: int, mpjpe_mm: float, terminated: bool) -> None:
        last = self.attempts[-1] if self.attempts else None
        if last is None or last.ended or motion != last.motion or frame < last.last_frame:
            if last is not None:
                last.ended = True
            last = Attempt(motion=motion, first_frame=frame)
            self.attempts.append(last)
        last.mpjpe_mm.append(mpjpe_mm)
        last.last_frame = frame
        if terminated:
            last.terminated = last.ended = True

    def rows(self, order: list[str] | None = None) -> dict[str, tuple[Attempt, int]]:
        """Per motion: its first complete attempt (else its first) and the attempt count; the motions named in
        ``order`` first (the playlist: the listener may join after the first motions ran), then by appearance."""
        rows: dict[str, tuple[Attempt, int]] = {}
        for attempt in self.attempts:
            shown, count = rows.get(attempt.motion, (attempt, 0))
            rows[attempt.motion] = (attempt if attempt.complete and not shown.complete else shown, count + 1)
        rank = {name: i for i, name in enumerate(order or [])}
        return dict(sorted(rows.items(), key=lambda item: rank.get(item[0], len(rank))))


class _TrackingListener:
    """Collects /kinesis/tracking (``Attempts``): per motion, steps, mean MPJPE, terminated, success."""

    def __init__(self, order: list[str] | None = None) -> None:
        import rclpy
        from kinesis_msgs.msg import TrackingStatus

        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node("kinesis_demo_listener")
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.on_tracking, 1000)
        self.attempts = Attempts()
        self.order = order or []

    def on_tracking(self, msg) -> None:
        self.attempts.add(msg.motion, int(msg.frame), float(msg.mpjpe_mm), bool(msg.terminated))

    def spin_once(self, timeout: float) -> None:
        self.rclpy.spin_once(self.node, timeout_sec=timeout)

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()

    def table(self):
        return attempts_table(self.attempts, self.order)

    def summary(self) -> str:
        return attempts_summary(self.attempts)


def attempts_table(attempts: Attempts, order: list[str] | None = None):
    from rich.table import Table

    table = Table(title="locomotion over ROS 2: per-motion tracking (/kinesis/tracking), as kinesis eval")
    for column in ("motion", "control steps", "MPJPE mm", "terminated", "success", "attempts"):
        table.add_column(column, justify="right")
    for name, (attempt, count) in attempts.rows(order).items():
        cut = not attempt.complete
        table.add_row(name, str(attempt.steps), f"{attempt.mean_mpjpe_mm:.1f}", "yes" if attempt.terminated else "no",
                      "cut" if cut else "yes" if attempt.success else "[red]no[/]", str(count))
    if not attempts.attempts:
        table.add_row("(no tracking messages received)", "", "", "", "", "")
    return table


def attempts_summary(attempts: Attempts) -> str:
    """The ``kinesis eval`` summary of the complete attempts shown: success rate, MPJPE averaged over motions."""
    shown = [attempt for attempt, _ in attempts.rows().values()]
    done = [attempt for attempt in shown if attempt.complete]
    if not done:
        return "overall: no motion was run to its end or termination"
    successes = sum(attempt.success for attempt in done)
    mpjpe = sum(attempt.mean_mpjpe_mm for attempt in done) / len(done)
    cut = f"; {len(shown) - len(done)} cut off by the end of the run, not counted" if len(shown) > len(done) else ""
    return (f"overall: success {successes}/{len(done)} motions ({100 * successes / len(done):.1f}%), "
            f"MPJPE {mpjpe:.1f} mm (mean over motions){cut}")


def _playlist_names() -> list[str]:
    """The motions the locomotion launch plays, in order (the default library)."""
    from kinesis_tasks.motions import load_library

    return list(load_library("default"))


# --- the video of a recording -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedState:
    """One /kinesis/sim_state of a recording with the reference keypoints [K, 3] of its tracked frame (or None)."""

    qpos: list[float]
    activation: list[float]
    reference: object


def read_recording(path: Path, *, max_states: int) -> list[RecordedState]:
    """The SimStates the policy node tracked among the first ``max_states`` of an MCAP written by the viz node,
    each with the reference keypoints of the frame it tracked there: the /kinesis/tracking message with the state's
    stamp logged next after it (stamps repeat after every reset: sim time restarts) and that frame of the
    motion's /kinesis/reference_motion. A recording without tracking gives every state, without reference."""
    import numpy as np
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    from kinesis_msgs.msg import ReferenceMotion, SimState, TrackingStatus

    states: list[list] = []  # [stamp, qpos, activation, (motion, frame) or None]
    latest: dict[int, int] = {}  # stamp -> index of the last state with that stamp
    early: dict[int, tuple[int, str, int]] = {}  # tracking logged before its state: stamp -> (log time, motion, frame)
    references: dict[str, np.ndarray] = {}
    tracked_any, end_time = False, None
    with open(path, "rb") as stream:
        topics = ["/kinesis/sim_state", "/kinesis/tracking", "/kinesis/reference_motion"]
        for _, channel, message in make_reader(stream).iter_messages(topics=topics, log_time_order=True):
            if end_time is not None and message.log_time > end_time:
                break
            if channel.topic == "/kinesis/sim_state":
                if len(states) < max_states:
                    msg = deserialize_message(message.data, SimState)
                    stamp = _stamp(msg)
                    latest[stamp] = len(states)
                    before = early.pop(stamp, None)
                    tracking = before[1:] if before is not None and message.log_time - before[0] < EARLY_NS else None
                    states.append([stamp, list(msg.qpos), list(msg.activation), tracking])
                elif end_time is None:
                    end_time = message.log_time + 1_000_000_000  # the tracking of the last states comes a bit later
            elif channel.topic == "/kinesis/tracking":
                msg = deserialize_message(message.data, TrackingStatus)
                stamp, tracked_any = _stamp(msg), True
                index = latest.get(stamp)
                if index is not None and states[index][3] is None:
                    states[index][3] = (msg.motion, int(msg.frame))
                else:
                    early[stamp] = (message.log_time, msg.motion, int(msg.frame))
            else:
                msg = deserialize_message(message.data, ReferenceMotion)
                keypoints = np.asarray(msg.keypoints, dtype=float)
                if keypoints.size == msg.num_frames * len(msg.body_names) * 3:
                    references[msg.name] = keypoints.reshape(msg.num_frames, len(msg.body_names), 3)
    recorded = []
    for _, qpos, activation, tracking in states:
        if tracked_any and tracking is None:
            continue  # not tracked by the policy (the state before its first reset)
        reference = None
        if tracking is not None:
            keypoints = references.get(tracking[0])
            reference = keypoints[tracking[1]] if keypoints is not None and tracking[1] < len(keypoints) else None
        recorded.append(RecordedState(qpos, activation, reference))
    return recorded


EARLY_NS = 200_000_000  # a TrackingStatus logged before its state: at most this much earlier


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def render_recording(mcap: Path, path: Path, embodiment: str, *, seconds: float, console=None) -> Path | None:
    """Render the first ``seconds`` of simulated time of a recording (every VIDEO_EVERY-th state) to an mp4."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # read when mujoco is first imported
    import mujoco
    import numpy as np
    from rich.progress import track

    from kinesis_tasks import load_embodiment, observations
    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_tasks.scene import add_spheres, set_pose

    states = read_recording(mcap, max_states=int(round(seconds * CONTROL_RATE_HZ)))[::VIDEO_EVERY]
    if not states:
        return None
    model = load_embodiment(embodiment)
    data = mujoco.MjData(model)
    include_head = ImitationConfig.default(embodiment=embodiment).tracks_head()
    tracked = [model.body(name).id for name in observations.tracked_bodies(model, include_head=include_head)]
    renderer, camera = _renderer(model, *VIDEO_SIZE), _tracking_camera(model)
    frames = []
    quiet = console is not None and not console.is_terminal  # a progress bar only on a terminal
    for state in track(states, description=f"rendering {len(states)} frames", console=console, transient=True,
                       disable=quiet):
        set_pose(model, data, np.asarray(state.qpos[:model.nq]))
        if len(state.activation) == model.na:
            data.act[:] = state.activation
        renderer.update_scene(data, camera=camera)
        if state.reference is not None:
            add_spheres(renderer.scene, state.reference, "reference")
        add_spheres(renderer.scene, data.xpos[tracked], "keypoints")
        frames.append(renderer.render())
    renderer.close()
    return _write_video(frames, path, fps=round(CONTROL_RATE_HZ / VIDEO_EVERY))


# --- the muscle simulation alone --------------------------------------------------------------------


def run_sim_only(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from rich.console import Console
    from rich.table import Table

    from kinesis_tasks import MuscleSim, load_embodiment
    from kinesis_tasks.controllers import hold_pose_action, relax_action

    console = Console(width=120)
    model = load_embodiment(args.embodiment)
    sim = MuscleSim(model, control_mode="target_length")
    hold_pose, relax = hold_pose_action(model), relax_action(model)
    steps = int(round(args.seconds / sim.control_dt))
    touch = slice(model.sensor("r_foot").adr[0], model.sensor("l_toes").adr[0] + 1)

    table = Table(title=f"{args.embodiment}: {model.nu} muscles, {1 / sim.control_dt:.0f} Hz control, "
                        f"{sim.substeps} substeps of {model.opt.timestep * 1e3:.2f} ms")
    for column in ("time s", "controller", "root height m", "mean activation", "max activation", "foot contact N"):
        table.add_column(column, justify="right")
    frames, renderer = [], None if args.no_video else _renderer(model)
    start = time.perf_counter()
    for step in range(steps):
        holding = step < steps * 2 // 3
        sim.step(hold_pose if holding else relax)
        if renderer is not None and step % VIDEO_EVERY == 0:
            renderer.update_scene(sim.data, camera=_tracking_camera(model))
            frames.append(renderer.render())
        if (step + 1) % max(1, steps // 10) == 0:
            table.add_row(f"{sim.data.time:.2f}", "hold pose" if holding else "relax", f"{sim.data.qpos[2]:.3f}",
                          f"{sim.data.act.mean():.3f}", f"{sim.data.act.max():.3f}", f"{sim.data.sensordata[touch].sum():.0f}")
    elapsed = time.perf_counter() - start
    console.print(table)
    console.print(f"{steps} control steps in {elapsed:.2f} s wall ({steps / elapsed:.0f} steps/s"
                  f"{', rendering included' if frames else ''})")
    if frames:
        path = _write_video(frames, args.out / f"{args.embodiment}.mp4", fps=round(1 / (sim.control_dt * VIDEO_EVERY)))
        console.print(f"video: {path}")
    return 0


def _renderer(model, height: int = 240, width: int = 320):
    """An offscreen renderer without shadows and reflections, and with coarse capsules (the muscles): about
    15x faster with OSMesa (software rendering: about 60 ms a frame at 480x360 for the 80-muscle legs)."""
    import mujoco

    model.vis.quality.numslices, model.vis.quality.numstacks = 8, 4  # drawing only, the physics ignores them
    renderer = mujoco.Renderer(model, height=height, width=width)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    return renderer


def _tracking_camera(model):
    import mujoco

    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = model.body("root").id
    camera.distance, camera.azimuth, camera.elevation = 2.8, 120.0, -12.0
    return camera


def _write_video(frames, path: Path, fps: int) -> Path:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    imageio.mimwrite(partial, frames, fps=fps, macro_block_size=8)
    partial.replace(path)
    return path
