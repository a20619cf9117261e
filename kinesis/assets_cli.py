"""`kinesis assets fetch|list|verify`: the official KINESIS model files and checkpoints from the Hugging Face Hub.

fetch downloads the files listed in config/assets.yaml (MyoLegs MJCF assets, the MoE imitation and target-reach
checkpoints) into the assets folder: --dest, else $KINESIS_ASSETS, else ~/.local/share/kinesis/assets.
Downloads resume where an interrupted one stopped (run the command again), every file is checked against its
sha256 (pinned in the config or --manifest, else the Hub's own content hash) before it is installed, and
DEST/MANIFEST.sha256 lists what was fetched. Afterwards `--embodiment kinesis-v1` and
`--checkpoint kinesis:moe` (kinesis:NAME, see `kinesis assets list`) find the files.

HF_ENDPOINT points at another Hub (a mirror); HF_TOKEN or `hf auth login` for gated repositories;
HF_HUB_OFFLINE=1 forbids downloads. See docs/assets_and_viewer.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("assets", help="download the official KINESIS model files and checkpoints",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="assets_command", metavar="COMMAND", required=True)

    fetch = commands.add_parser("fetch", help="download (or check) the official files into the assets folder")
    fetch.add_argument("--dest", type=Path, default=None,
                       help="assets folder (default $KINESIS_ASSETS, else ~/.local/share/kinesis/assets)")
    fetch.add_argument("--repo", action="append", default=None, metavar="SOURCE",
                       help="only this source (its name or repo id in the assets config; repeatable; default all)")
    fetch.add_argument("--revision", default=None,
                       help="branch, tag or commit to fetch instead of each source's configured revision")
    fetch.add_argument("--config", type=Path, default=None,
                       help="another assets YAML in the layout of config/assets.yaml (mirrors, forks)")
    fetch.add_argument("--manifest", type=Path, default=None,
                       help="pinned checksums: sha256sum lines 'HEX  SOURCE/PATH' (e.g. a MANIFEST.sha256 of a "
                            "trusted fetch)")
    fetch.add_argument("--retries", type=int, default=3,
                       help="resume an interrupted download this many times before giving up (default 3)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="network timeout in s (default 30)")
    fetch.set_defaults(func=run_fetch)

    listing = commands.add_parser("list", help="the named embodiments and checkpoints and whether they are fetched")
    listing.add_argument("--dest", type=Path, default=None, help="assets folder (default as for fetch)")
    listing.set_defaults(func=run_list)

    check = commands.add_parser("verify", help="re-check the fetched files against DEST/MANIFEST.sha256")
    check.add_argument("--dest", type=Path, default=None, help="assets folder (default as for fetch)")
    check.set_defaults(func=run_verify)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run_fetch(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from kinesis_tasks.asset_fetch import FetchError, fetch
    from kinesis_tasks.assets import assets_dir, load_assets_config

    if args.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {args.retries}")
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be > 0, got {args.timeout}")
    if args.manifest is not None and not args.manifest.is_file():
        raise FileNotFoundError(f"--manifest {args.manifest}: file not found")
    config = load_assets_config(args.config)
    console = Console(soft_wrap=True)
    dest = assets_dir(args.dest)
    console.print(f"assets folder: {dest}")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=console, transient=True)
    bars: dict[str, int] = {}

    def on_progress(label: str, done: int, total: int | None) -> None:
        if label not in bars:
            bars[label] = progress.add_task(label, total=total)
        progress.update(bars[label], completed=done)

    def on_result(result) -> None:
        if result.relative in bars:
            progress.remove_task(bars.pop(result.relative))
        detail = "" if result.status == "not published" else f" ({_size(result.size)}, checked: {result.verified_by})"
        note = " (optional; skipped)" if result.status == "not published" else ""
        console.print(f"  {result.relative}: {result.status}{detail}{note}")

    try:
        with progress:
            results = fetch(config, args.dest, repos=args.repo, revision=args.revision, manifest=args.manifest,
                            retries=args.retries, timeout=args.timeout, on_progress=on_progress, on_result=on_result)
    except FetchError as error:
        print(f"kinesis assets fetch: error: {error}", file=sys.stderr)
        return 1
    got = [r for r in results if r.status != "not published"]
    console.print(f"{len(got)} files in {dest} (sha256 list: {dest / 'MANIFEST.sha256'}); "
                  "`kinesis assets list` shows the names to use")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from kinesis_tasks.assets import assets_dir, load_assets_config

    config = load_assets_config()
    root = assets_dir(args.dest)
    print(f"assets folder: {root}")
    print("sources (config/assets.yaml):")
    for source in config.sources.values():
        print(f"  {source.name}: {source.repo_type} {source.repo_id}@{source.revision}")
    for title, prefix, table in (("embodiments (--embodiment NAME)", "", config.embodiments),
                                 ("checkpoints (--checkpoint kinesis:NAME)", "kinesis:", config.checkpoints)):
        print(title + ":")
        for name, relative in table.items():
            state = "fetched" if (root / relative).is_file() else "not fetched"
            print(f"  {prefix}{name:<14} {relative}  [{state}]")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from kinesis_tasks.asset_fetch import verify

    results = verify(args.dest)
    for name, state in results:
        print(f"  {name}: {state}")
    bad = [name for name, state in results if state != "ok"]
    if bad:
        print(f"kinesis assets verify: {len(bad)} of {len(results)} files missing or changed: run "
              "`kinesis assets fetch` to download them again", file=sys.stderr)
        return 1
    print(f"{len(results)} files ok")
    return 0
