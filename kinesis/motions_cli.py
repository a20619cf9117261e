"""`kinesis motions ...`: list, show, preview, convert and import reference motions."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "motions", help="list, inspect, preview and convert reference motions",
        description="Reference motion libraries: the embedded default library ('default'), a library .npz "
                    "or a folder of motion .npz files. LIB[:split] selects a split, e.g. default:test.")
    commands = parser.add_subparsers(dest="motions_command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="list the motions of a library",
                                  description="List name, split, duration, frames and text label of each motion.")
    listing.add_argument("library", nargs="?", default="default", metavar="LIB[:split]",
                         help="library path or 'default', optionally ':train' or ':test' (default: default)")
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", help="describe one motion", description="Print a motion's metadata, "
                               "bodies, duration, speed and floor clearance.")
    show.add_argument("name", help="motion name (in --library) or path to a single-motion .npz")
    show.add_argument("--library", default="default", help="library to look the name up in (default: default)")
    show.set_defaults(func=_show)

    preview = commands.add_parser("preview", help="plot or animate a motion (matplotlib)",
                                  description="Render keypoint trajectories and stick figures (.png) or an "
                                              "animation (.gif, .mp4 needs ffmpeg).")
    preview.add_argument("name", help="motion name (in --library) or path to a single-motion .npz")
    preview.add_argument("--library", default="default", help="library to look the name up in (default: default)")
    preview.add_argument("--out", type=Path, help="output file .png/.gif/.mp4 (default: <name>.png)")
    preview.set_defaults(func=_preview)

    amass = commands.add_parser(
        "convert-amass", help="convert AMASS SMPL-H clips (e.g. KIT) with your SMPL model",
        description="Convert AMASS .npz clips (poses, trans, mocap_framerate) to 30 fps reference motions with "
                    "the neutral SMPL model (SMPL_NEUTRAL.pkl from https://smpl.is.tue.mpg.de, SMPL v1.1.0) via "
                    "smplx. Names are 0-KIT_<subject>_<file>; train/test splits follow the official KIT key lists.")
    amass.add_argument("--amass-dir", required=True, type=Path, help="folder with AMASS clips, e.g. .../AMASS/KIT")
    amass.add_argument("--smpl-model-dir", required=True, type=Path, help="folder holding SMPL_NEUTRAL.pkl")
    amass.add_argument("--keys", type=Path, help="text file of clip keys to convert (default: all clips found)")
    amass.add_argument("--out", type=Path, default=Path("amass_kit.npz"),
                       help="output library: .npz file or folder (default: amass_kit.npz)")
    amass.set_defaults(func=_convert_amass)

    mdm = commands.add_parser(
        "import-mdm", help="import MDM results.npy (text-labelled generated motions)",
        description="Import an MDM results.npy (HumanML3D joints, y-up, 20 fps) as z-up 30 fps motions with "
                    "their text prompts. The file is UNPICKLED: only import files you trust.")
    mdm.add_argument("results", type=Path, help="MDM results.npy")
    mdm.add_argument("--out", type=Path, default=Path("mdm_motions.npz"),
                     help="output library: .npz file or folder (default: mdm_motions.npz)")
    mdm.set_defaults(func=_import_mdm)

    from_task = commands.add_parser(
        "from-task", help="record a task's planned references as motions (training data for task policies)",
        description="Record what the reach or directional task's reference does for goals drawn from its "
                    "distribution (config/tasks.yaml), followed exactly from the standing start: starts, walks, "
                    "turns and stops planned from the motion library's clips. Each motion gets a qpos (an IK fit "
                    "per frame, ~40 ms each) so training episodes can start anywhere in it. Train the imitation "
                    "policy on the result (kinesis train expert --motions FILE) to teach it the tasks' references.")
    from_task.add_argument("task", choices=("reach", "directional"), help="the task whose references to record")
    from_task.add_argument("--count", type=int, default=8, help="number of goals, one motion each (default: 8)")
    from_task.add_argument("--seconds", type=float, help="length of each motion (default: the task's time limit)")
    from_task.add_argument("--seed", type=int, default=0, help="seed of the goal draws (default: 0)")
    from_task.add_argument("--with", dest="include", action="append", default=[], metavar="LIB[:split]",
                           help="also copy these motions into the output (repeatable), e.g. default:train")
    from_task.add_argument("--out", type=Path, required=True, help="output library: .npz file or folder")
    from_task.set_defaults(func=_from_task)

    mirror = commands.add_parser(
        "mirror", help="add the mirror images of a library's motions (left and right swapped)",
        description="Write a library holding the motions of LIB[:split] and their mirror images (reflected in the "
                    "x-z plane, left and right bodies and joints swapped, 'left'/'right' swapped in the text, "
                    "named <name>_mirrored; kinesis_tasks.motions.mirror). MyoLegs is symmetric, so each mirror "
                    "image is a motion the body can do: a left turn gives a right turn. Every motion of the output "
                    "is in its train split (mirror training clips only: a test clip's image is a test clip too).")
    mirror.add_argument("library", metavar="LIB[:split]", help="the motions to mirror, e.g. default:train")
    mirror.add_argument("--out", type=Path, required=True, help="output library: .npz file or folder")
    mirror.add_argument("--only-mirrored", action="store_true", help="write the mirror images without the originals")
    mirror.set_defaults(func=_mirror)


def _list(args: argparse.Namespace) -> int:
    from kinesis_tasks.motions import library_splits, load_library, parse_library_spec

    library, split = parse_library_spec(args.library)
    motions = load_library(library, split=split)
    splits: dict[str, list[str]] = {}
    for name, members in library_splits(library).items():
        for member in members:
            splits.setdefault(member, []).append(name)
    print(f"{'name':40s} {'split':8s} {'duration':>8s} {'frames':>6s}  text")
    for motion in motions.values():
        where = ",".join(splits.get(motion.name, [])) or "-"
        print(f"{motion.name:40s} {where:8s} {motion.duration:6.2f} s {motion.num_frames:6d}  {motion.text}")
    print(f"{len(motions)} motions in {args.library}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import numpy as np

    from kinesis_tasks.motions import library_splits, load_motion

    motion = load_motion(args.name, library=args.library)
    root = motion.keypoints[:, 0]
    speed = np.linalg.norm(np.diff(root[:, :2], axis=0), axis=1).sum() / motion.duration
    splits = [] if Path(args.name).suffix == ".npz" else \
        [s for s, names in library_splits(args.library).items() if motion.name in names]
    rows = [("name", motion.name), ("text", motion.text or "-"), ("split", ", ".join(splits) or "-"),
            ("fps", f"{motion.fps:g}"), ("frames", motion.num_frames), ("duration", f"{motion.duration:.2f} s"),
            ("bodies", ", ".join(motion.body_names)), ("mean root speed", f"{speed:.2f} m/s"),
            ("lowest keypoint", f"{motion.keypoints[..., 2].min():.3f} m"),
            ("root_quat", "yes" if motion.root_quat is not None else "no"),
            ("qpos", f"{motion.qpos.shape[1]} values for {motion.embodiment}" if motion.qpos is not None else "no"),
            ("source", motion.source or "-"), ("licence", motion.licence or "-")]
    for key, value in rows:
        print(f"{key:16s} {value}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from kinesis_tasks.motions import load_motion
    from kinesis_tasks.motions.preview import render_preview

    motion = load_motion(args.name, library=args.library)
    out = render_preview(motion, args.out or Path(f"{motion.name}.png"))
    print(f"wrote {out}")
    return 0


def _convert_amass(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kinesis_tasks.motions import save_library
    from kinesis_tasks.motions.amass import SmplSkeleton, convert_clip, find_clips, kit_key, kit_splits

    keys = None
    if args.keys is not None:
        if not args.keys.is_file():
            raise FileNotFoundError(f"--keys file not found: {args.keys}")
        keys = [line.strip() for line in args.keys.read_text().splitlines() if line.strip()]
    skeleton = SmplSkeleton(args.smpl_model_dir)
    clips = find_clips(args.amass_dir, keys)
    if not clips:
        raise ValueError(f"no AMASS clips (*.npz) found under {args.amass_dir}" + (" matching --keys" if keys else ""))
    motions, failures = [], []
    for clip in tqdm(clips, desc="converting AMASS", unit="clip"):
        try:
            motions.append(convert_clip(clip, skeleton))
        except ValueError as error:
            failures.append(str(error))
    names = {motion.name for motion in motions}
    splits = {split: sorted(names & members) for split, members in kit_splits().items()}
    if motions:
        save_library(args.out, motions, splits)
        print(f"wrote {len(motions)} motions to {args.out} (train {len(splits['train'])}, test "
              f"{len(splits['test'])}, in neither list {len(names) - len(splits['train']) - len(splits['test'])})")
    for failure in failures:
        print(f"skipped: {failure}")
    return 1 if failures else 0


def _import_mdm(args: argparse.Namespace) -> int:
    from kinesis_tasks.motions import save_library
    from kinesis_tasks.motions.mdm import import_mdm

    motions = import_mdm(args.results)
    save_library(args.out, motions)
    print(f"wrote {len(motions)} motions to {args.out}")
    for motion in motions:
        print(f"  {motion.name}: {motion.text!r} ({motion.duration:.2f} s)")
    return 0


def _from_task(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_tasks.motions import load_library, parse_library_spec, save_library
    from kinesis_tasks.task_motions import task_motions
    from kinesis_training.mining import with_poses

    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    motions = {}
    for spec in args.include:
        library, split = parse_library_spec(spec)
        motions.update(load_library(library, split=split))
    recorded = task_motions(args.task, args.count, seed=args.seed, seconds=args.seconds)
    config = ImitationConfig.default()
    for motion in tqdm(recorded, desc="fitting poses", unit="motion"):
        motions[motion.name] = with_poses({motion.name: motion}, config)[0]
    save_library(args.out, motions.values(), {"train": list(motions)})
    print(f"wrote {len(motions)} motions ({len(recorded)} {args.task} references) to {args.out}")
    return 0


def _mirror(args: argparse.Namespace) -> int:
    from kinesis_tasks.embodiment import load_embodiment
    from kinesis_tasks.motions import load_library, parse_library_spec, save_library
    from kinesis_tasks.motions.mirror import mirror_motion

    originals = list(load_library(*parse_library_spec(args.library)).values())
    models = {name: load_embodiment(name) for name in {m.embodiment for m in originals if m.embodiment}}
    motions = ([] if args.only_mirrored else originals) + [mirror_motion(m, models.get(m.embodiment)) for m in originals]
    save_library(args.out, motions, {"train": [m.name for m in motions]})
    print(f"wrote {len(motions)} motions to {args.out} ({len(originals)} mirror images"
          f"{'' if args.only_mirrored else ' and their originals'})")
    return 0
