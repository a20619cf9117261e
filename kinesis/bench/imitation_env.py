"""Bench section ``imitation_env``: control steps/s of the simulation against baselines of the same run.

Baselines kept here, and only here:
* raw physics: ``mj_step`` x substeps with fixed controls (the physical limit);
* the per-muscle loop: the target-length law evaluated muscle by muscle with
  ``mujoco.mju_muscleGain`` / ``mju_muscleBias``, as the original KINESIS does.
"""

from __future__ import annotations

from kinesis.bench.common import median_rate


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


EMBODIMENTS = ("legs", "legs_back")


def measure(quick: bool) -> dict:
    repeats = 3 if quick else 7
    return {embodiment: bench_muscle_sim(embodiment, repeats) for embodiment in EMBODIMENTS}


def tables(results: dict) -> list:
    from rich.table import Table

    table = Table(title="control steps/s (median) against baselines of the same run")
    for column in ("embodiment", "mode", "steps/s", "raw physics steps/s", "% of physics", "per-muscle loop steps/s", "speedup vs loop"):
        table.add_column(column, justify="right")
    for embodiment, by_mode in results.items():
        for mode in ("target_length", "direct"):
            row = by_mode[mode]
            loop = row.get("loop_baseline_control_steps_per_s")
            table.add_row(embodiment, mode, f"{row['control_steps_per_s']:.0f}", f"{row['physics_control_steps_per_s']:.0f}",
                          f"{100 * row['control_steps_per_s'] / row['physics_control_steps_per_s']:.0f}%",
                          f"{loop:.0f}" if loop else "", f"{row['control_steps_per_s'] / loop:.1f}x" if loop else "")
    mapping = Table(title="target-length control law alone: vectorized vs per-muscle loop (calls/s)")
    for column in ("embodiment", "vectorized", "loop", "speedup"):
        mapping.add_column(column, justify="right")
    for embodiment, by_mode in results.items():
        m = by_mode["control_mapping"]
        mapping.add_row(embodiment, f"{m['vectorized_calls_per_s']:.0f}", f"{m['loop_calls_per_s']:.0f}", f"{m['speedup']:.1f}x")
    return [table, mapping]
