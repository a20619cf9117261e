"""Bench section ``batched``: N imitation envs stepped by one call, one process vs several side by side.

* single thread: ``VectorImitationEnv`` steps the N envs one after another in this process;
* batched: ``ParallelImitationEnv`` with the same N envs in ``WORKERS`` blocks: this process steps block 0
  while a worker process steps block 1 (the default); the same with the worker pinned to a CPU; and
  every block in a worker process (``step_in_parent=False``). The workers get the compiled model from
  this process. One message per worker per step.

All run the ``legs`` imitation task in target-length mode, reset with the same seed before every round
and stepped with the same random actions (uniform in [-1, 1]: episodes end often, so autoresets are part
of the load); the batched arrays are bit-identical to the single-thread ones (tests/test_parallel_env.py),
so every round of every variant does exactly the same work. The rounds alternate the variants and the
best round of each is reported: the blocks run in lockstep, so another process on the machine slows the
batched variants more than the single thread (the slowest block sets the pace).

``cpu_time_estimate`` predicts the idle-machine rates of the default variant from CPU time, which other
processes inflate much less than wall time: single = env steps / CPU s of this process; batched = env
steps / max(CPU s of this process, CPU s of the worker), the two running side by side (pipe wake-ups and
the imbalance between blocks within each step are not counted, so it is an upper bound). Peak memory:
VmHWM of a worker process (``envs_per_worker`` envs), given the model or compiling it itself, and of this
process (the single-thread env and the blocks 0 of two batched variants).

Reference, not comparable one to one: raw physics of direct mode batched with ``mujoco.rollout`` (native
threads, no observation or reward), control steps/s of N envs with 1 and ``WORKERS`` threads.
"""

from __future__ import annotations

import time

NUM_ENVS = 8
WORKERS = 2


def _rate(env, actions) -> float:
    """Env steps per second of stepping ``env`` through ``actions`` [steps, N, nu]."""
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return actions.shape[0] * actions.shape[1] / (time.perf_counter() - start)


def _cpu_times(env) -> list[float]:
    """CPU seconds of this process, then of each worker of ``env`` (if it has workers)."""
    from kinesis.bench.common import process_cpu_s

    return [time.process_time(), *(process_cpu_s(pid) for pid in getattr(env, "worker_pids", []))]


def bench_envs(rounds: int, steps: int) -> dict:
    import numpy as np

    from kinesis.bench.common import peak_rss_mib, process_peak_rss_mib
    from kinesis_tasks.embodiment import load_embodiment
    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_tasks.parallel_env import ParallelImitationEnv
    from kinesis_tasks.vector_env import VectorImitationEnv

    config = ImitationConfig.default(embodiment="legs", control_mode="target_length")
    single = VectorImitationEnv(NUM_ENVS, config)
    nu = single.single_action_space.shape[0]
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, NUM_ENVS, nu)).astype(np.float32)
    model = load_embodiment(config.embodiment)
    variants = {
        "single_thread": single,
        "batched": ParallelImitationEnv(NUM_ENVS, config, workers=WORKERS, model=model),
        "batched_pinned": ParallelImitationEnv(NUM_ENVS, config, workers=WORKERS, model=model, pin_cpus=True),
        "batched_workers_only": ParallelImitationEnv(NUM_ENVS, config, workers=WORKERS, model=model,
                                                     step_in_parent=False),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu = {name: np.zeros(1 + len(getattr(env, "worker_pids", []))) for name, env in variants.items()}
    try:
        for env in variants.values():  # warm-up: the initial-state caches of the motions and starts used
            env.reset(seed=0)
            _rate(env, actions)
        for _ in range(rounds):
            for name, env in variants.items():
                env.reset(seed=0)  # every round and variant does the same work (the same trajectories)
                before = _cpu_times(env)
                rates[name].append(_rate(env, actions))
                cpu[name] += np.subtract(_cpu_times(env), before)
        worker_rss = max(process_peak_rss_mib(pid) for pid in variants["batched_workers_only"].worker_pids)
    finally:
        for env in variants.values():
            env.close()
    block = NUM_ENVS // WORKERS
    with ParallelImitationEnv(block, config, workers=1, step_in_parent=False) as compiling:  # compiles its model
        compiling.reset(seed=0)
        for action in actions[:10, :block]:
            compiling.step(action)
        compiling_worker_rss = process_peak_rss_mib(compiling.worker_pids[0])
    best = {name: max(values) for name, values in rates.items()}
    env_steps = rounds * steps * NUM_ENVS
    calls = rounds * steps
    cpu_single = env_steps / cpu["single_thread"][0]
    cpu_batched = env_steps / cpu["batched"].max()
    paired = [b / s for b, s in zip(rates["batched"], rates["single_thread"])]
    return {
        "num_envs": NUM_ENVS,
        "workers": WORKERS,
        "envs_per_worker": block,
        "embodiment": "legs",
        "control_mode": "target_length",
        "steps_per_round": steps,
        "rounds": rounds,
        "single_thread_steps_per_s": best["single_thread"],
        "batched_steps_per_s": best["batched"],
        "batched_pinned_steps_per_s": best["batched_pinned"],
        "batched_workers_only_steps_per_s": best["batched_workers_only"],
        "speedup": best["batched"] / best["single_thread"],
        "speedup_pinned": best["batched_pinned"] / best["single_thread"],
        "speedup_workers_only": best["batched_workers_only"] / best["single_thread"],
        "speedup_median_of_rounds": float(np.median(paired)),
        "target_speedup": 1.7,
        "rates_by_round": rates,
        "cpu_time_estimate": {
            "single_thread_steps_per_s": cpu_single,
            "batched_steps_per_s": cpu_batched,
            "speedup": cpu_batched / cpu_single,
            "batched_parent_cpu_us_per_call": 1e6 * cpu["batched"][0] / calls,
            "batched_worker_cpu_us_per_call": 1e6 * cpu["batched"][1] / calls,
            "workers_only_parent_cpu_us_per_call": 1e6 * cpu["batched_workers_only"][0] / calls,
        },
        "worker_peak_rss_mib": worker_rss,
        "worker_peak_rss_mib_compiling_its_model": compiling_worker_rss,
        "this_process_peak_rss_mib": peak_rss_mib(),
    }


def bench_rollout_direct(repeats: int) -> dict:
    """Control steps/s of NUM_ENVS direct-mode envs, physics only, via mujoco.rollout (1 vs WORKERS threads)."""
    import mujoco
    import numpy as np
    from mujoco import rollout

    from kinesis_tasks import MuscleSim, load_embodiment

    model = load_embodiment("legs")
    sim = MuscleSim(model, control_mode="direct")
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, sim.data, state, spec)
    initial = np.tile(state, (NUM_ENVS, 1))
    control = np.random.default_rng(0).uniform(0.0, 1.0, (NUM_ENVS, sim.substeps, model.nu))
    pools = {threads: (rollout.Rollout(nthread=threads), [mujoco.MjData(model) for _ in range(threads)])
             for threads in (1, WORKERS)}
    best = dict.fromkeys(pools, 0.0)
    try:
        for _ in range(repeats):  # interleaved, best of the repeats (as the env rounds above)
            for threads, (pool, datas) in pools.items():
                start = time.perf_counter()
                for _ in range(20):
                    pool.rollout([model] * NUM_ENVS, datas, initial, control)
                best[threads] = max(best[threads], 20 * NUM_ENVS / (time.perf_counter() - start))
    finally:
        for pool, _ in pools.values():
            pool.close()
    results = {f"threads_{threads}_steps_per_s": rate for threads, rate in best.items()}
    results["speedup"] = best[WORKERS] / best[1]
    return results


def measure(quick: bool) -> dict:
    rounds, steps = (2, 20) if quick else (15, 40)
    return {"envs": bench_envs(rounds, steps), "rollout_direct_reference": bench_rollout_direct(3 if quick else 7)}


def tables(results: dict) -> list:
    from rich.table import Table

    envs = results["envs"]
    table = Table(title=f"{envs['num_envs']} imitation envs ({envs['embodiment']}, {envs['control_mode']}) stepped by one "
                        f"call: env steps/s, best of {envs['rounds']} rounds (target speedup {envs['target_speedup']}x)")
    for column in ("stepper", "processes", "envs/process", "env steps/s", "speedup", "median speedup of rounds"):
        table.add_column(column, justify="right")
    n, per = str(envs["num_envs"]), str(envs["envs_per_worker"])
    table.add_row("VectorImitationEnv (single thread)", "1", n, f"{envs['single_thread_steps_per_s']:.0f}", "1.00x", "")
    table.add_row("ParallelImitationEnv: block 0 here + 1 worker", "2", per, f"{envs['batched_steps_per_s']:.0f}",
                  f"{envs['speedup']:.2f}x", f"{envs['speedup_median_of_rounds']:.2f}x")
    table.add_row("  the same, worker pinned", "2", per, f"{envs['batched_pinned_steps_per_s']:.0f}",
                  f"{envs['speedup_pinned']:.2f}x", "")
    table.add_row("  every block in a worker", f"1 + {envs['workers']}", per,
                  f"{envs['batched_workers_only_steps_per_s']:.0f}", f"{envs['speedup_workers_only']:.2f}x", "")
    estimate = envs["cpu_time_estimate"]
    table.add_row("idle estimate from CPU time: single / batched", "", "",
                  f"{estimate['single_thread_steps_per_s']:.0f} / {estimate['batched_steps_per_s']:.0f}",
                  f"{estimate['speedup']:.2f}x", "")
    memory = Table(title="peak resident memory (VmHWM), MiB")
    for column in ("process", "envs", "MiB"):
        memory.add_column(column, justify="right")
    memory.add_row("env worker, model file from the parent", per, f"{envs['worker_peak_rss_mib']:.0f}")
    memory.add_row("env worker, compiling the model itself", per, f"{envs['worker_peak_rss_mib_compiling_its_model']:.0f}")
    memory.add_row("this process (single-thread env + 2 blocks 0)", f"{n} + 2 x {per}",
                   f"{envs['this_process_peak_rss_mib']:.0f}")
    ref = results["rollout_direct_reference"]
    rollout_table = Table(title="reference: direct-mode physics only, mujoco.rollout native threads (control steps/s)")
    for column in ("envs", "1 thread", f"{envs['workers']} threads", "speedup"):
        rollout_table.add_column(column, justify="right")
    threaded = ref[f"threads_{envs['workers']}_steps_per_s"]
    rollout_table.add_row(n, f"{ref['threads_1_steps_per_s']:.0f}", f"{threaded:.0f}", f"{ref['speedup']:.2f}x")
    return [table, memory, rollout_table]
