"""`kinesis demo`: run the muscle simulation headless, print a table and write a video.

The model starts standing; a target-length controller holds the muscle lengths of
that pose (no balance feedback, so the body sways and settles), then the muscles
relax. The table shows root height, muscle activation and foot contact forces;
the video is rendered offscreen (MUJOCO_GL=osmesa).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

VIDEO_EVERY = 2  # render every other control step (15 fps): software rendering is slow


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the muscle simulation headless: a table and a video", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="legs", help="legs (80 muscles), legs_abs (86), legs_back (290) or an MJCF path")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated duration (default 3)")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for the video (default demo_out/)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from rich.console import Console
    from rich.table import Table

    from kinesis_tasks import MuscleSim, load_embodiment
    from kinesis_tasks.controllers import hold_pose_action, relax_action

    console = Console()
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
