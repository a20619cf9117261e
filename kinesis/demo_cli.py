"""`kinesis demo`: the ROS 2 stack end to end, headless.

Runs the ``locomotion`` launch (sim node, policy node, visualization node) in
lockstep for a bounded time on the embedded default motions, listens to
/kinesis/tracking, and prints per-motion success and MPJPE. The run is recorded
to an MCAP file that Foxglove opens. Without ``--checkpoint`` the policy node
runs its fallback controller (hold the standing muscle lengths, no balance), so
tracking fails quickly: train a policy or pass an official KINESIS checkpoint
(on the matching embodiment) to see walking.

``kinesis demo --sim-only`` skips ROS: the muscle simulation alone, a table and
an mp4 rendered offscreen.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

VIDEO_EVERY = 2  # render every other control step (15 fps): software rendering is slow


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the ROS 2 stack headless: per-motion tracking table and an MCAP",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds the launch runs (default 20)")
    parser.add_argument("--checkpoint", default="", help="policy model.pth (default: the policy node's fallback controller)")
    parser.add_argument("--embodiment", default="legs", help="legs (80 muscles), legs_abs (86), legs_back (290) or an MJCF path")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for the MCAP or video (default demo_out/)")
    parser.add_argument("--sim-only", action="store_true", help="no ROS: run the muscle simulation alone and render a video")
    parser.add_argument("--seconds", type=float, default=3.0, help="--sim-only: simulated seconds (default 3)")
    parser.add_argument("--no-video", action="store_true", help="--sim-only: skip rendering")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_sim_only(args) if args.sim_only else run_ros(args)


# --- the ROS 2 stack ------------------------------------------------------------------------------


def run_ros(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(width=120)
    args.out.mkdir(parents=True, exist_ok=True)
    mcap = (args.out / "locomotion.mcap").resolve()
    env = dict(os.environ, ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(random.randint(1, 200))),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(env)
    command = [sys.executable, "-m", "kinesis.cli", "launch", "locomotion", "headless:=true", "clock:=lockstep",
               f"duration:={args.duration:g}", f"record:={mcap}", f"embodiment:={args.embodiment}", f"checkpoint:={args.checkpoint}"]
    console.print(f"[bold]kinesis launch locomotion[/] (lockstep, headless, {args.duration:g} s) ...")
    results = _TrackingListener()
    launch = subprocess.Popen(command, env=env)
    try:
        while launch.poll() is None:
            results.spin_once(0.1)
    except KeyboardInterrupt:
        launch.send_signal(2)
        launch.wait(timeout=30)
    finally:
        results.close()
    console.print(results.table())
    if mcap.exists():
        console.print(f"recording: {mcap} ({mcap.stat().st_size / 1e6:.1f} MB)\n"
                      "  open it in Foxglove (app.foxglove.dev or the desktop app): File > Open local file.\n"
                      "  live instead: kinesis launch locomotion, then connect Foxglove to ws://localhost:8765\n"
                      "  (docs/visualization.md).")
    return launch.returncode or 0


class _TrackingListener:
    """Collects /kinesis/tracking per motion: steps, mean MPJPE, terminated, success."""

    def __init__(self) -> None:
        import rclpy
        from kinesis_msgs.msg import TrackingStatus

        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node("kinesis_demo_listener")
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.on_tracking, 100)
        self.motions: dict[str, dict] = {}

    def on_tracking(self, msg) -> None:
        row = self.motions.setdefault(msg.motion, {"steps": 0, "mpjpe_sum": 0.0, "terminated": False, "success": True})
        row["steps"] += 1
        row["mpjpe_sum"] += msg.mpjpe_mm
        row["terminated"] |= msg.terminated
        row["success"] = msg.success and not row["terminated"]

    def spin_once(self, timeout: float) -> None:
        self.rclpy.spin_once(self.node, timeout_sec=timeout)

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()

    def table(self):
        from rich.table import Table

        table = Table(title="locomotion over ROS 2: per-motion tracking (/kinesis/tracking)")
        for column in ("motion", "control steps", "MPJPE mm", "terminated", "success"):
            table.add_column(column, justify="right")
        for name, row in self.motions.items():
            table.add_row(name, str(row["steps"]), f"{row['mpjpe_sum'] / max(row['steps'], 1):.0f}",
                          "yes" if row["terminated"] else "no", "yes" if row["success"] else "no")
        if not self.motions:
            table.add_row("(no tracking messages received)", "", "", "", "")
        return table


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


def _renderer(model):
    import mujoco

    return mujoco.Renderer(model, height=240, width=320)


def _tracking_camera(model):
    import mujoco

    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = model.body("root").id
    camera.distance, camera.azimuth, camera.elevation = 3.0, 120.0, -15.0
    return camera


def _write_video(frames, path: Path, fps: int) -> Path:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    imageio.mimwrite(partial, frames, fps=fps, macro_block_size=8)
    partial.replace(path)
    return path
