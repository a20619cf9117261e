"""Bench section ``training``: PPO samples/s end to end (sampling + update), split between the two.

Each preset (``cpu``: small network, 2 'mp' workers; ``paper``: the published network, one 'mp' worker per
core) runs ``kinesis_training.trainer.train`` for ``EPOCHS`` epochs in a temporary run folder with its own
sampler, workers and PPO settings, only ``min_batch_size`` reduced (``BATCH``) so the section takes a
couple of minutes. The figures are the trainer's own timings of the last epoch (the first one warms up):
``perf/sample_s`` (``sampler.collect``) and ``perf/update_s`` (``PPO.update``); end to end is
batch / (sample_s + update_s), checkpoint writing excluded. Samples/s hardly depend on the batch size:
both phases scale with it, only the per-epoch transfer of the policy weights to the workers does not.
``--quick`` is a smoke test: 1 epoch of 128 and 64 samples with the 'inprocess' sampler (no worker
start-up), no sampler comparison.

``samplers``: samples/s of one collection (small Lattice policy, 2,048 samples, after a warm-up one) for
ways of spreading 8 envs over 2 cores: 'mp' with 2 workers x 4 envs, 'mp' with 2 workers x 1 env (the cpu
preset's layout, 4x more steps per env), and 'inprocess' stepping a ``ParallelImitationEnv`` of 8 envs
(4 in this process, 4 in a worker) with the policy in this process (one batched policy call per step,
the envs in lockstep). Beside the wall-clock rate, an idle-machine estimate from CPU time (as in the
``batched`` section): samples / CPU s of the busiest process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

EPOCHS = 2
QUICK_EPOCHS = 1
BATCH = {"cpu": 2048, "paper": 1024}
QUICK_BATCH = {"cpu": 128, "paper": 64}
SAMPLER_BATCH = 2048


def bench_preset(preset: str, batch: int, epochs: int, sampler: str | None = None) -> dict:
    """``sampler`` replaces the preset's (None: keep it)."""
    import tempfile

    from kinesis_training.config import load_config
    from kinesis_training.trainer import train

    config = load_config(preset).replace(epochs=epochs, min_batch_size=batch, save_every=0)
    if sampler is not None:
        config = config.replace(sampler=sampler)
    with tempfile.TemporaryDirectory(prefix=f"kinesis-bench-{preset}-") as run_dir:
        start = time.perf_counter()
        scalars = train(config, run_dir, progress=False)
        wall = time.perf_counter() - start
    sample_s, update_s, samples = scalars["perf/sample_s"], scalars["perf/update_s"], scalars["perf/batch_size"]
    return {
        "network": config.network,
        "actor": config.actor,
        "sampler": config.sampler,
        "workers": config.num_workers,
        "envs_per_worker": config.envs_per_worker,
        "opt_epochs": config.ppo.opt_epochs,
        "preset_min_batch_size": load_config(preset).min_batch_size,
        "min_batch_size": batch,
        "batch_size": samples,
        "epochs": epochs,
        "samples_per_s": samples / (sample_s + update_s),
        "sampling_samples_per_s": samples / sample_s,
        "update_samples_per_s": samples / update_s,
        "sample_s": sample_s,
        "update_s": update_s,
        "sampling_fraction": sample_s / (sample_s + update_s),
        "update_fraction": update_s / (sample_s + update_s),
        "wall_s_all_epochs_with_startup": wall,
    }


@dataclass(frozen=True)
class ParallelEnvFactory:
    """make_env(num_envs) -> ParallelImitationEnv in ``workers`` blocks (for the in-process sampler)."""

    workers: int

    def __call__(self, num_envs: int):
        from kinesis_tasks.imitation import ImitationConfig
        from kinesis_tasks.parallel_env import ParallelImitationEnv

        return ParallelImitationEnv(num_envs, ImitationConfig.default(), workers=self.workers)


def bench_samplers(samples: int) -> dict:
    import torch
    from kinesis_tasks.imitation import ImitationConfig, ImitationEnv

    from kinesis_training.checkpoint import infer_spec
    from kinesis_training.presets import build_actor, build_critic, get_preset
    from kinesis_training.samplers import make_sampler
    from kinesis_training.trainer import ImitationEnvFactory

    from kinesis.bench.common import process_cpu_s

    env = ImitationEnv(ImitationConfig.default())
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    torch.manual_seed(0)
    preset = get_preset("small")
    policy = build_actor("lattice", obs_dim, action_dim, preset)
    spec = infer_spec(policy.state_dict(), build_critic(obs_dim, preset).state_dict())
    layouts = {
        "mp_2x4": ("mp", ImitationEnvFactory.of(ImitationConfig.default()), 2, 4),
        "mp_2x1": ("mp", ImitationEnvFactory.of(ImitationConfig.default()), 2, 1),
        "inprocess_parallel_env_1x8": ("inprocess", ParallelEnvFactory(workers=2), 1, 8),
    }
    results = {}
    for name, (kind, make_env, workers, envs) in layouts.items():
        sampler = make_sampler(kind, make_env, spec, workers=workers, envs_per_worker=envs, seed=0)
        try:
            sampler.collect(policy, samples // 4)  # warm-up
            pids = [p.pid for p in sampler.processes] if kind == "mp" else sampler.workers[0].env.worker_pids
            cpu_before, own_before = [process_cpu_s(pid) for pid in pids], time.process_time()
            start = time.perf_counter()
            rollout = sampler.collect(policy, samples)
            elapsed = time.perf_counter() - start
            own = time.process_time() - own_before if kind == "inprocess" else 0.0
            busiest = max(own, *(process_cpu_s(pid) - before for pid, before in zip(pids, cpu_before)))
        finally:
            sampler.close()
        results[name] = {"sampler": kind, "workers": workers, "envs_per_worker": envs, "samples": len(rollout),
                         "samples_per_s": len(rollout) / elapsed,
                         "cpu_time_estimate_samples_per_s": len(rollout) / busiest}
    return results


def measure(quick: bool) -> dict:
    if quick:
        return {"presets": {preset: bench_preset(preset, batch, QUICK_EPOCHS, "inprocess")
                            for preset, batch in QUICK_BATCH.items()}, "samplers": {}}
    return {
        "presets": {preset: bench_preset(preset, batch, EPOCHS) for preset, batch in BATCH.items()},
        "samplers": bench_samplers(SAMPLER_BATCH),
    }


def tables(results: dict) -> list:
    from rich.table import Table

    epochs = next(iter(results["presets"].values()))["epochs"]
    table = Table(title=f"PPO training throughput, last of {epochs} epochs (batch reduced from the preset's)")
    for column in ("preset", "network", "sampler x workers x envs", "batch (preset's)", "samples/s end to end",
                   "sampling s", "update s", "sampling %", "update %", "sampling samples/s"):
        table.add_column(column, justify="right")
    for preset, r in results["presets"].items():
        table.add_row(preset, r["network"], f"{r['sampler']} x {r['workers']} x {r['envs_per_worker']}",
                      f"{r['batch_size']:.0f} ({r['preset_min_batch_size']})", f"{r['samples_per_s']:.0f}",
                      f"{r['sample_s']:.2f}", f"{r['update_s']:.2f}", f"{100 * r['sampling_fraction']:.0f}%",
                      f"{100 * r['update_fraction']:.0f}%", f"{r['sampling_samples_per_s']:.0f}")
    samplers = Table(title="sampling only, small Lattice policy, 2 cores: samples/s of one collection")
    for column in ("layout", "sampler", "workers", "envs/worker", "samples", "samples/s", "idle estimate from CPU time"):
        samplers.add_column(column, justify="right")
    for name, r in results["samplers"].items():
        samplers.add_row(name, r["sampler"], str(r["workers"]), str(r["envs_per_worker"]), str(r["samples"]),
                         f"{r['samples_per_s']:.0f}", f"{r['cpu_time_estimate_samples_per_s']:.0f}")
    return [table, samplers] if results["samplers"] else [table]
