"""`kinesis emg compare`: correlate simulated muscle activations with recorded EMG over the gait cycle.

EMG (--recording, CSV: a time column in s and one column per channel, any sample rate) is band-passed
(--band, default 20-450 Hz), rectified and low-passed (--lowpass, default 6 Hz) to an envelope; the
simulated activations (MuJoCo act) get the same low-pass. Both are cut into gait cycles of one side
(--side): in the simulation at the rising edges of that foot's touch sensor, in the EMG at a heel-strike
or contact column of the CSV (heel_strike_r, contact_l, footswitch...), at the times of --events, or
else in cycles of the simulated median duration from the recording's start (+ --emg-offset). Cycles are
resampled to 0-100 % (101 points) and averaged. Per EMG channel (mapped to MyoLegs muscles by --mapping,
default config/emg_mapping.yaml; several muscles are averaged) it prints Pearson r of the two mean
curves and their peak timing (% of cycle, and activation - EMG), and writes OUT/emg_compare.json and
OUT/emg_compare.png.

The activations come from a ROS 2 recording (--run RUN.mcap, e.g. `kinesis launch locomotion
record:=run.mcap`; every episode is used unless --episode or --motion picks some) or from running a
checkpoint offline on one reference motion (--policy model.pth --motion NAME). See docs/emg.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import median


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("emg", help="compare simulated muscle activations with recorded EMG")
    commands = parser.add_subparsers(dest="emg_command", metavar="COMMAND", required=True)
    compare = commands.add_parser("compare", help="Pearson r and peak timing of EMG vs activation per gait cycle",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--recording", type=Path, required=True, help="EMG CSV (time column in s + one column per channel)")
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="MCAP recording of the ROS stack (/kinesis/sim_state)")
    source.add_argument("--policy", type=Path, metavar="CKPT", help="model.pth to run offline on --motion")
    compare.add_argument("--motion", help="--policy: the reference motion (name or .npz); --run: keep only its episodes")
    compare.add_argument("--library", default="default", help="--policy: motion library of --motion (default 'default')")
    compare.add_argument("--embodiment", default=None,
                         help="--policy: embodiment (default legs); --run: overrides the recorded one for muscle names")
    compare.add_argument("--episode", type=int, default=None, help="--run: use only this episode (0-based)")
    compare.add_argument("--mapping", type=Path, default=None,
                         help="channel -> muscle YAML (default config/emg_mapping.yaml)")
    compare.add_argument("--side", choices=("r", "l"), default="r",
                         help="side whose heel strikes delimit cycles (default r)")
    compare.add_argument("--time-column", default=None, help="name of the CSV time column (default: time, t, header...)")
    compare.add_argument("--events", type=Path, default=None, help="heel-strike times (s) of the EMG, one per line")
    compare.add_argument("--emg-offset", type=float, default=0.0,
                         help="without EMG events: time (s) after the recording's start of its first heel strike")
    compare.add_argument("--preprocessed", action="store_true",
                         help="the CSV holds envelopes: no band-pass or rectification")
    compare.add_argument("--band", type=float, nargs=2, default=(20.0, 450.0), metavar=("LOW", "HIGH"),
                         help="EMG band-pass in Hz (default 20 450; HIGH is kept below Nyquist)")
    compare.add_argument("--lowpass", type=float, default=6.0, help="envelope low-pass in Hz (default 6)")
    compare.add_argument("--tolerance", type=float, default=0.3,
                         help="drop cycles whose duration differs from the median by more than this fraction (default 0.3)")
    compare.add_argument("--out", type=Path, default=Path("emg_out"), help="output folder (default emg_out/)")
    compare.set_defaults(func=run_compare)


def _simulation(args: argparse.Namespace):
    """(episodes, muscle names, description) from --run or --policy."""
    from kinesis_tasks import load_embodiment
    from kinesis_tasks.emg_io import read_run, record_episode

    if args.policy is not None:
        from kinesis_training.inference import CheckpointPolicy

        if args.motion is None:
            raise ValueError("--policy needs --motion NAME (the reference motion to run)")
        if not args.policy.is_file():
            raise FileNotFoundError(f"--policy {args.policy}: file not found")
        episode, names, terminated = record_episode(CheckpointPolicy(str(args.policy)), args.motion,
                                                    embodiment=args.embodiment or "legs", library=args.library)
        note = f", terminated early at {episode.time[-1]:.2f} s" if terminated else ""
        return [episode], names, f"policy {args.policy} on {episode.motion} ({episode.time[-1]:.2f} s{note})"
    run = read_run(args.run)
    episodes = run.episodes
    if args.motion is not None:
        episodes = [e for e in episodes if e.motion == args.motion]
        if not episodes:
            found = sorted({e.motion for e in run.episodes if e.motion})
            raise ValueError(f"--motion {args.motion}: no episode of {args.run} tracks it "
                             f"(motions: {', '.join(found) or 'none recorded'})")
    if args.episode is not None:
        if not 0 <= args.episode < len(episodes):
            raise ValueError(f"--episode {args.episode}: {args.run} has {len(episodes)} episodes (0..{len(episodes) - 1})")
        episodes = [episodes[args.episode]]
    names = run.muscle_names
    if names is None or args.embodiment is not None:
        try:
            model = load_embodiment(args.embodiment or run.embodiment)
        except (FileNotFoundError, ValueError) as error:
            raise ValueError(f"muscle names of embodiment {args.embodiment or run.embodiment!r}: {error}; "
                             "pass --embodiment") from None
        names = tuple(model.actuator(i).name for i in range(model.nu))
    width = episodes[0].activation.shape[1]
    if width != len(names):
        raise ValueError(f"{args.run}: {width} activations per state but {len(names)} muscle names; pass --embodiment")
    seconds = sum(float(e.time[-1] - e.time[0]) for e in episodes)
    return episodes, names, f"run {args.run} ({len(episodes)} episodes, {seconds:.1f} s)"


def run_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from kinesis_tasks.emg import compare_gait, resolve_mapping
    from kinesis_tasks.emg_io import load_mapping, plot_comparison, read_emg_csv, read_events, report_dict

    if args.episode is not None and args.run is None:
        raise ValueError("--episode needs --run")
    console = Console()
    emg = read_emg_csv(args.recording, args.time_column)
    mapping = load_mapping(args.mapping)
    episodes, muscle_names, source = _simulation(args)
    channels, unmapped = resolve_mapping(emg.channels, mapping, muscle_names, args.side)
    if not channels:
        raise ValueError(f"{args.recording}: no column matches the mapping (columns: {', '.join(emg.channels)}); "
                         "write your own with --mapping (docs/emg.md)")
    if unmapped:
        console.print(f"[yellow]not mapped, skipped:[/] {', '.join(unmapped)}")
    if args.events is not None:
        strikes, events_from = read_events(args.events), str(args.events)
    else:
        strikes, events_from = emg.heel_strikes(args.side)
    columns = [emg.channels.index(c.channel) for c in channels]
    result = compare_gait(emg.time, emg.data[:, columns], channels, episodes, muscle_names, side=args.side,
                          emg_strikes=strikes, emg_offset=args.emg_offset,
                          band=None if args.preprocessed else tuple(args.band), cutoff=args.lowpass,
                          tolerance=args.tolerance)

    table = Table(title=f"EMG {args.recording.name} vs {source}, side {args.side}")
    for column in ("channel", "muscles", "r", "EMG peak %", "act. peak %", "shift %"):
        table.add_column(column, justify="left" if column in ("channel", "muscles") else "right")
    for r in result.results:
        c = r.comparison
        table.add_row(r.channel.channel, ", ".join(r.channel.muscles), f"{c.r:.2f}", f"{c.emg_peak:.0f}",
                      f"{c.activation_peak:.0f}", f"{c.peak_shift:+.0f}")
    console.print(table)
    console.print(f"cycles: simulation {len(result.sim_cycle_durations)} "
                  f"(median {median(result.sim_cycle_durations):.2f} s), "
                  f"EMG {len(result.emg_cycle_durations)} (median {median(result.emg_cycle_durations):.2f} s; "
                  f"events: {events_from or result.emg_events})")

    args.out.mkdir(parents=True, exist_ok=True)
    report = report_dict(result, recording=str(args.recording), source=source, side=args.side,
                         mapping=str(args.mapping or "config/emg_mapping.yaml"), unmapped=unmapped,
                         band_hz=None if args.preprocessed else list(args.band), lowpass_hz=args.lowpass,
                         emg_events_from=events_from)
    (args.out / "emg_compare.json").write_text(json.dumps(report, indent=2))
    plot = plot_comparison(result, args.out / "emg_compare.png", f"EMG vs activation over the gait cycle ({args.side})")
    console.print(f"written: {args.out / 'emg_compare.json'}, {plot}")
    return 0
