"""`kinesis bench`: throughput of the core against baselines measured in the same run.

Prints a table and writes JSON (``bench/results.json`` by default). Every figure
is a median over repeats; every ratio divides two numbers of this run.

Baselines kept here, and only here:
* raw physics: ``mj_step`` x substeps with fixed controls (the physical limit);
* the per-muscle loop: the target-length law evaluated muscle by muscle with
  ``mujoco.mju_muscleGain`` / ``mju_muscleBias``, as the original KINESIS does.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput; print a table and write JSON", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="JSON output (default bench/results.json)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (for smoke tests)")
    parser.set_defaults(func=run)


def median_rate(function: Callable[[], None], calls: int, repeats: int) -> float:
    """Median calls per second of ``function`` over ``repeats`` timed batches of ``calls`` calls."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        rates.append(calls / (time.perf_counter() - start))
    return statistics.median(rates)


def per_muscle_loop_control(model, data, action):
    """Baseline: the target-length law one muscle at a time with MuJoCo's curve functions."""
    import mujoco
    import numpy as np

    out = np.empty(model.nu)
    for i in range(model.nu):
        peak = model.actuator_biasprm[i, 2]
        target = (action[i] + 1) / 2 * model.actuator_lengthrange[i, 1]
        length, velocity = data.actuator_length[i], data.actuator_velocity[i]
        force = min(max(5 * peak * (target - length) - 0.5 * peak * velocity, -peak), 0.0)
        gain = mujoco.mju_muscleGain(length, velocity, model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_gainprm[i, :9])
        bias = mujoco.mju_muscleBias(length, model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_biasprm[i, :9])
        out[i] = min(max((force - bias) / min(-1.0, gain), 0.0), 1.0)
    return out


def bench_muscle_sim(embodiment: str, repeats: int) -> dict:
    """Control steps/s of MuscleSim in both modes, raw physics and the per-muscle-loop baseline."""
    import mujoco
    import numpy as np

    from kinesis_tasks import MuscleSim, load_embodiment
    from kinesis_tasks.control import MuscleParams, target_length_control

    model = load_embodiment(embodiment)
    action = np.random.default_rng(0).uniform(-1, 1, model.nu)
    results: dict = {}
    for mode in ("target_length", "direct"):
        sim = MuscleSim(model, control_mode=mode)
        results[mode] = {"control_steps_per_s": median_rate(lambda: sim.step(action), 30, repeats)}
    raw = MuscleSim(model, control_mode="direct")

    def physics_only() -> None:
        for _ in range(raw.substeps):
            mujoco.mj_step(model, raw.data)

    physics = median_rate(physics_only, 30, repeats)
    loop_sim = MuscleSim(model, control_mode="direct")

    def loop_step() -> None:
        for _ in range(loop_sim.substeps):
            loop_sim.data.ctrl[:] = per_muscle_loop_control(model, loop_sim.data, action)
            mujoco.mj_step(model, loop_sim.data)

    loop = median_rate(loop_step, 10, repeats)
    for mode in results:
        results[mode]["physics_control_steps_per_s"] = physics
    results["target_length"]["loop_baseline_control_steps_per_s"] = loop

    params, data = MuscleParams.from_model(model), raw.data
    vectorized = median_rate(lambda: target_length_control(params, action, data.actuator_length, data.actuator_velocity), 200, repeats)
    looped = median_rate(lambda: per_muscle_loop_control(model, data, action), 20, repeats)
    results["control_mapping"] = {
        "vectorized_calls_per_s": vectorized,
        "loop_calls_per_s": looped,
        "speedup": vectorized / looped,
    }
    return results


def machine_info() -> dict:
    import os

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def versions() -> dict:
    import mujoco
    import numpy
    import torch

    return {"python": platform.python_version(), "mujoco": mujoco.__version__, "numpy": numpy.__version__, "torch": torch.__version__}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    repeats = 3 if args.quick else 7
    results = {"machine": machine_info(), "versions": versions(), "muscle_sim": {}}
    console = Console(width=140)
    for embodiment in ("legs", "legs_back"):
        console.print(f"[bold]muscle sim[/] {embodiment} ...")
        results["muscle_sim"][embodiment] = bench_muscle_sim(embodiment, repeats)

    table = Table(title="MuscleSim control steps/s (median) against baselines of the same run")
    for column in ("embodiment", "mode", "steps/s", "raw physics steps/s", "% of physics", "per-muscle loop steps/s", "speedup vs loop"):
        table.add_column(column, justify="right")
    for embodiment, by_mode in results["muscle_sim"].items():
        for mode in ("target_length", "direct"):
            row = by_mode[mode]
            loop = row.get("loop_baseline_control_steps_per_s")
            table.add_row(embodiment, mode, f"{row['control_steps_per_s']:.0f}", f"{row['physics_control_steps_per_s']:.0f}",
                          f"{100 * row['control_steps_per_s'] / row['physics_control_steps_per_s']:.0f}%",
                          f"{loop:.0f}" if loop else "", f"{row['control_steps_per_s'] / loop:.1f}x" if loop else "")
    console.print(table)
    mapping = Table(title="target-length control law alone: vectorized vs per-muscle loop (calls/s)")
    for column in ("embodiment", "vectorized", "loop", "speedup"):
        mapping.add_column(column, justify="right")
    for embodiment, by_mode in results["muscle_sim"].items():
        m = by_mode["control_mapping"]
        mapping.add_row(embodiment, f"{m['vectorized_calls_per_s']:.0f}", f"{m['loop_calls_per_s']:.0f}", f"{m['speedup']:.1f}x")
    console.print(mapping)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(args.out)
    console.print(f"results: {args.out}")
    return 0
