"""Bench section ``imitation_env``: control steps/s of the imitation environment against baselines of the same run.

Every rate is measured on the same trajectories: episodes of ``ImitationEnv`` (observation, reward and
termination included; termination disabled so no reset falls inside a timed segment) start from the
reference pose and run a fixed random action sequence. Rows (embodiment x control mode):

* ``control_steps_per_s``: ``ImitationEnv.step``, everything included;
* ``physics_control_steps_per_s``: the physics alone, ``mj_step`` x substeps replaying the recorded
  controls from the recorded initial states (``mj_setState``), so the same states, contacts and solver
  iterations; this is the limit any environment over MuJoCo's Python API can reach;
* ``muscle_sim_control_steps_per_s``: ``MuscleSim.step`` (control law + physics, no observation);
* ``loop_baseline_control_steps_per_s`` (target_length): the same env with the target-length law
  evaluated muscle by muscle at every sub-step (``per_muscle_loop_control``, the structure of the
  original KINESIS code); its observation and reward are ours, so the original (about 1 ms more of
  NumPy observation and reward per step) is slower still;
* ``fraction_of_physics`` (env / physics rate) and ``speedup_vs_loop`` (env / loop-baseline rate): the
  median over rounds of the ratio within each round; ``reset_ms``: one ``reset`` (not in the timed steps).

``control_mapping``: the target-length law alone, compiled kernel vs per-muscle loop (calls/s).
The variants alternate segment by segment within each round; each figure is the median over rounds. Time is this
process's CPU time (``time.process_time``): the throughput of one core, which other processes sharing
the machine do not inflate (wall time does, by their time slices); on an idle core the two agree.
"""

from __future__ import annotations

import time

from kinesis.bench.common import median_rate

CLOCK = time.process_time
EMBODIMENTS = ("legs", "legs_back")
MODES = ("target_length", "direct")
MOTION = "myosuite_walk_a"


def per_muscle_loop_control(model, data, action):
    """Baseline: the target-length law muscle by muscle, in the three passes of the original KINESIS
    code (action -> target length, target length -> PD force, force -> control with MuJoCo's curve
    functions ``mju_muscleGain`` / ``mju_muscleBias``), with NumPy scalar operations."""
    import mujoco
    import numpy as np

    target = np.zeros(model.nu)
    for i in range(model.nu):
        target[i] = (np.clip(action[i], -1.0, 1.0) + 1.0) / 2.0 * model.actuator_lengthrange[i, 1]
    force = np.zeros(model.nu)
    for i in range(model.nu):
        peak = model.actuator_biasprm[i, 2]
        kp = 5.0 * peak
        force[i] = np.clip(kp * (target[i] - data.actuator_length[i]) - 0.1 * kp * data.actuator_velocity[i], -peak, 0.0)
    control = np.zeros(model.nu)
    for i in range(model.nu):
        length, velocity, lengthrange, acc0 = (data.actuator_length[i], data.actuator_velocity[i],
                                               model.actuator_lengthrange[i], model.actuator_acc0[i])  # fmt: skip
        gain = mujoco.mju_muscleGain(length, velocity, lengthrange, acc0, model.actuator_gainprm[i, :9])
        bias = mujoco.mju_muscleBias(length, lengthrange, acc0, model.actuator_biasprm[i, :9])
        control[i] = np.clip((force[i] - bias) / min(-1.0, gain), 0.0, 1.0)
    return control


def _loop_muscle_sim(model):
    """A MuscleSim whose target-length law is ``per_muscle_loop_control`` (the original's per-muscle loop)."""
    import mujoco
    import numpy as np

    from kinesis_tasks import MuscleSim

    class LoopMuscleSim(MuscleSim):
        def step(self, action):
            action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
            for k in range(self.substeps):
                control = per_muscle_loop_control(self.model, self.data, action)
                self.data.ctrl[:] = control
                self.substep_controls[k] = control
                mujoco.mj_step(self.model, self.data)

    return LoopMuscleSim(model, control_mode="direct")


def _segment_timer(reset, step, actions):
    """``timer(i)``: ``reset()`` (not timed), then the seconds ``step`` takes over the actions of segment i."""

    def timer(i: int) -> float:
        reset()
        start = CLOCK()
        for action in actions[i]:
            step(action)
        return CLOCK() - start

    return timer


def bench_mode(embodiment: str, model, motion, mode: str, rounds: int, segments: int, segment_steps: int) -> dict:
    """Rates of one (embodiment, control mode) row; see the module docstring."""
    import mujoco
    import numpy as np

    from kinesis_tasks.imitation import ImitationConfig, ImitationEnv

    config = ImitationConfig(
        embodiment=embodiment, control_mode=mode, evaluation=True, eval_termination_distance=float("inf")
    )
    env = ImitationEnv(config, [motion], model=model)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (segments, segment_steps, model.nu))
    options = {"motion": motion.name, "start": 0}
    env.reset(options=options)
    if env.max_episode_steps < segment_steps:
        raise ValueError(f"motion {motion.name!r}: {env.max_episode_steps} control steps, fewer than {segment_steps}")
    # Untimed pass: the initial state of each segment and the controls written at every sub-step.
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    initial = np.empty((segments, mujoco.mj_stateSize(model, spec)))
    controls = np.empty((segments, segment_steps, env.sim.substeps, model.nu))
    final_qpos = np.empty((segments, model.nq))
    for i, segment in enumerate(actions):
        env.reset(options=options)
        mujoco.mj_getState(model, env.sim.data, initial[i], spec)
        for t, action in enumerate(segment):
            env.step(action)
            controls[i, t] = env.sim.substep_controls
        final_qpos[i] = env.sim.data.qpos
    data = mujoco.MjData(model)

    def physics(i: int) -> float:
        """Seconds of segment i's physics, replayed from its initial state with its recorded controls."""
        mujoco.mj_setState(model, data, initial[i], spec)
        ctrl = data.ctrl
        start = CLOCK()
        for step_controls in controls[i]:
            for control in step_controls:
                ctrl[:] = control
                mujoco.mj_step(model, data)
        return CLOCK() - start

    for i in range(segments):
        physics(i)
        if not np.array_equal(data.qpos, final_qpos[i]):
            raise RuntimeError(f"{mode}: the physics replay of segment {i} left the env's trajectory")

    timers = {
        "env": _segment_timer(lambda: env.reset(options=options), env.step, actions),
        "physics": physics,
        "muscle_sim": _segment_timer(lambda: env.reset(options=options), env.sim.step, actions),
    }
    if mode == "target_length":
        loop_env = ImitationEnv(config, [motion], model=model)
        loop_env.sim = _loop_muscle_sim(model)
        timers["loop"] = _segment_timer(lambda: loop_env.reset(options=options), loop_env.step, actions)
    # Variants alternate segment by segment, so load changes on the machine hit them alike.
    timings = {name: np.zeros(rounds) for name in timers}
    for r in range(rounds):
        for i in range(segments):
            for name, timer in timers.items():
                timings[name][r] += timer(i)
    steps = segments * segment_steps
    rates = {name: steps / float(np.median(seconds)) for name, seconds in timings.items()}
    row = {
        "control_steps_per_s": rates["env"],
        "physics_control_steps_per_s": rates["physics"],
        "muscle_sim_control_steps_per_s": rates["muscle_sim"],
        # Ratios of times of the same round (paired), median over rounds.
        "fraction_of_physics": float(np.median(timings["physics"] / timings["env"])),
        "muscle_sim_fraction_of_physics": float(np.median(timings["physics"] / timings["muscle_sim"])),
        "reset_ms": 1000.0 / median_rate(lambda: env.reset(options=options), 5, rounds, CLOCK),
    }
    if "loop" in timers:
        row["loop_baseline_control_steps_per_s"] = rates["loop"]
        row["speedup_vs_loop"] = float(np.median(timings["loop"] / timings["env"]))
    return row


def bench_control_law(model, repeats: int) -> dict:
    """The target-length law alone on one state: compiled kernel vs per-muscle loop (calls/s)."""
    import mujoco
    import numpy as np

    from kinesis_tasks import kernels
    from kinesis_tasks.control import MuscleParams

    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    action = np.random.default_rng(0).uniform(-1, 1, model.nu)
    arrays = (MuscleParams.from_model(model).table, action, data.actuator_length, data.actuator_velocity,
              np.empty(model.nu), data.ctrl)  # fmt: skip
    kernel = median_rate(lambda: kernels.target_length_control_into(*arrays), 2000, repeats, CLOCK)
    looped = median_rate(lambda: per_muscle_loop_control(model, data, action), 20, repeats, CLOCK)
    return {"kernel_calls_per_s": kernel, "loop_calls_per_s": looped, "speedup": kernel / looped}


def bench_embodiment(embodiment: str, quick: bool) -> dict:
    from kinesis_tasks import load_embodiment
    from kinesis_tasks.motions import load_library

    model = load_embodiment(embodiment)
    motion = load_library("default")[MOTION]
    rounds, segments, segment_steps = (3, 2, 10) if quick else (11, 6, 15)
    results: dict = {mode: bench_mode(embodiment, model, motion, mode, rounds, segments, segment_steps) for mode in MODES}
    results["control_mapping"] = bench_control_law(model, 3 if quick else 7)
    return results


def measure(quick: bool) -> dict:
    return {embodiment: bench_embodiment(embodiment, quick) for embodiment in EMBODIMENTS}


def tables(results: dict) -> list:
    from rich.table import Table

    table = Table(title="ImitationEnv control steps/s (one core, median): obs + reward + termination included, "
                        "vs baselines on the same states")
    for column in ("embodiment", "mode", "env", "raw physics", "% of physics", "MuscleSim", "% of physics",
                   "per-muscle-loop env", "speedup vs loop", "reset ms"):  # fmt: skip
        table.add_column(column, justify="right")
    for embodiment, by_mode in results.items():
        for mode in MODES:
            row = by_mode[mode]
            loop = row.get("loop_baseline_control_steps_per_s")
            table.add_row(
                embodiment, mode, f"{row['control_steps_per_s']:.0f}", f"{row['physics_control_steps_per_s']:.0f}",
                f"{100 * row['fraction_of_physics']:.0f}%", f"{row['muscle_sim_control_steps_per_s']:.0f}",
                f"{100 * row['muscle_sim_fraction_of_physics']:.0f}%", f"{loop:.0f}" if loop else "",
                f"{row['speedup_vs_loop']:.1f}x" if loop else "", f"{row['reset_ms']:.1f}",
            )  # fmt: skip
    mapping = Table(title="target-length control law alone (one state, calls/s): compiled kernel vs per-muscle loop")
    for column in ("embodiment", "kernel", "per-muscle loop", "speedup"):
        mapping.add_column(column, justify="right")
    for embodiment, by_mode in results.items():
        m = by_mode["control_mapping"]
        mapping.add_row(embodiment, f"{m['kernel_calls_per_s']:.0f}", f"{m['loop_calls_per_s']:.0f}", f"{m['speedup']:.0f}x")
    return [table, mapping]
