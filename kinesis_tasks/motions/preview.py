"""Matplotlib previews of a ReferenceMotion: a still (.png) or an animation (.gif, .mp4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kinesis_tasks.motions.motion import ReferenceMotion

#: Stick-figure edges between bodies (drawn when both ends are in the motion).
EDGES = (("root", "tibia_l"), ("tibia_l", "talus_l"), ("talus_l", "toes_l"),
         ("root", "tibia_r"), ("tibia_r", "talus_r"), ("talus_r", "toes_r"), ("root", "head"))
SNAPSHOTS = 8


def render_preview(motion: ReferenceMotion, out: str | Path) -> Path:
    """Write a preview: .png = top-view trajectories + side-view stick figures; .gif/.mp4 = 3D animation."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    if out.suffix not in (".png", ".gif", ".mp4"):
        raise ValueError(f"preview output must end in .png, .gif or .mp4, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        _still(motion, out)
    else:
        _animation(motion, out)
    return out


def _edges(motion: ReferenceMotion) -> list[tuple[int, int]]:
    names = motion.body_names
    return [(names.index(a), names.index(b)) for a, b in EDGES if a in names and b in names]


def _still(motion: ReferenceMotion, out: Path) -> None:
    import matplotlib.pyplot as plt

    keypoints = motion.keypoints
    figure, (top, side) = plt.subplots(1, 2, figsize=(12, 5))
    for index, body in enumerate(motion.body_names):
        top.plot(keypoints[:, index, 0], keypoints[:, index, 1], label=body, linewidth=1)
    top.set(title="top view (x-y), m", xlabel="x", ylabel="y", aspect="equal")
    top.legend(fontsize=7)
    for frame in np.linspace(0, motion.num_frames - 1, SNAPSHOTS).astype(int):
        for a, b in _edges(motion):
            side.plot(keypoints[frame, [a, b], 0], keypoints[frame, [a, b], 2], color="C0", linewidth=1.5)
    side.axhline(0.0, color="grey", linewidth=0.8)
    side.set(title=f"side view (x-z), {SNAPSHOTS} frames", xlabel="x", ylabel="z", aspect="equal")
    figure.suptitle(f"{motion.name}: {motion.text or 'no label'} ({motion.duration:.1f} s at {motion.fps:g} fps)")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def _animation(motion: ReferenceMotion, out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib import animation

    keypoints = motion.keypoints
    edges = _edges(motion)
    figure = plt.figure(figsize=(6, 6))
    axes = figure.add_subplot(projection="3d")
    low, high = keypoints.min(axis=(0, 1)), keypoints.max(axis=(0, 1))
    centre, half = (low + high) / 2, max((high - low).max() / 2, 1.0)
    axes.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half), zlim=(0, 2 * half))
    lines = [axes.plot([], [], [], color="C0")[0] for _ in edges]

    def draw(frame: int):
        for line, (a, b) in zip(lines, edges):
            line.set_data_3d(keypoints[frame, [a, b], 0], keypoints[frame, [a, b], 1], keypoints[frame, [a, b], 2])
        axes.set_title(f"{motion.name} t={frame / motion.fps:.2f} s")
        return lines

    movie = animation.FuncAnimation(figure, draw, frames=motion.num_frames, interval=1000 / motion.fps)
    if out.suffix == ".mp4" and not animation.writers.is_available("ffmpeg"):
        plt.close(figure)
        raise ValueError(f"cannot write {out}: ffmpeg is not installed (use .gif or .png)")
    movie.save(out, writer="ffmpeg" if out.suffix == ".mp4" else "pillow", fps=motion.fps)
    plt.close(figure)
