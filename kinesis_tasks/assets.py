"""The official KINESIS files (MJCF assets, checkpoints): where they live locally and how names resolve.

``config/assets.yaml`` lists the Hugging Face Hub repositories (*sources*) and gives names to files in
them: ``--embodiment kinesis-v1`` and ``--checkpoint kinesis:NAME`` resolve to files under the assets
folder (``assets_dir``), which ``kinesis assets fetch`` (``kinesis_tasks.asset_fetch``) fills. Nothing
here touches the network: a name whose file is missing raises ``AssetsMissingError``, which says to run
``kinesis assets fetch``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from kinesis_tasks.config import load_config

#: Prefix of an official checkpoint name: ``kinesis:moe``, ``kinesis:expert_0``, ``kinesis:SOURCE/PATH``.
CHECKPOINT_PREFIX = "kinesis:"
REPO_TYPES = ("model", "dataset")


class AssetsMissingError(FileNotFoundError):
    """A named official file is not in the assets folder (``kinesis assets fetch`` downloads it)."""


@dataclass(frozen=True)
class Source:
    """One Hub repository of config/assets.yaml."""

    name: str
    repo_id: str
    repo_type: str = "model"
    revision: str = "main"
    files: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetsConfig:
    """Sources and the named embodiments / checkpoints (paths relative to the assets folder)."""

    sources: dict[str, Source]
    embodiments: dict[str, str]
    checkpoints: dict[str, str]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], origin: str = "config/assets.yaml") -> AssetsConfig:
        unknown = sorted(set(values) - {"sources", "embodiments", "checkpoints"})
        if unknown:
            raise ValueError(f"{origin}: unknown keys {unknown}")
        sources = {}
        for name, entry in (values.get("sources") or {}).items():
            entry = dict(entry or {})
            bad = sorted(set(entry) - {f for f in Source.__dataclass_fields__ if f != "name"})
            if bad:
                raise ValueError(f"{origin}: source {name!r}: unknown keys {bad}")
            if "/" not in str(entry.get("repo_id", "")):
                raise ValueError(f"{origin}: source {name!r}: repo_id must be 'owner/name'")
            if entry.get("repo_type", "model") not in REPO_TYPES:
                raise ValueError(f"{origin}: source {name!r}: repo_type must be one of {REPO_TYPES}")
            pins = {str(k): str(v).lower() for k, v in (entry.pop("sha256", None) or {}).items()}
            lists = {key: tuple(str(p) for p in entry.pop(key, None) or ()) for key in ("files", "optional", "include")}
            if not any(lists.values()):
                raise ValueError(f"{origin}: source {name!r} lists no files, optional files or include patterns")
            sources[str(name)] = Source(name=str(name), sha256=pins, **lists, **entry)
        return cls(sources=sources, embodiments={str(k): str(v) for k, v in (values.get("embodiments") or {}).items()},
                   checkpoints={str(k): str(v) for k, v in (values.get("checkpoints") or {}).items()})


def load_assets_config(path: str | os.PathLike | None = None) -> AssetsConfig:
    """config/assets.yaml, or another YAML file of the same layout."""
    if path is None:
        return AssetsConfig.from_dict(load_config("assets"))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"assets config {path} not found")
    return AssetsConfig.from_dict(yaml.safe_load(path.read_text()) or {}, origin=str(path))


def assets_dir(dest: str | os.PathLike | None = None) -> Path:
    """The assets folder: ``dest``, else $KINESIS_ASSETS, else $XDG_DATA_HOME/kinesis/assets."""
    if dest is not None:
        return Path(dest).expanduser()
    if os.environ.get("KINESIS_ASSETS"):
        return Path(os.environ["KINESIS_ASSETS"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser() / "kinesis" / "assets"


def _missing(what: str, relative: str, root: Path) -> AssetsMissingError:
    fetched = (root / relative.split("/", 1)[0]).is_dir()
    layout = (" That source was fetched without this file: the repository does not publish it (optional files of "
              "config/assets.yaml are skipped when absent) or its layout differs from config/assets.yaml (see what is "
              "in the folder and correct the path there)." if fetched else "")
    return AssetsMissingError(
        f"{what} is the official KINESIS file {relative}, which is not in the assets folder {root}: "
        f"download it with `kinesis assets fetch` (needs internet access; `--dest DIR` or $KINESIS_ASSETS "
        f"chooses another folder; docs/assets_and_viewer.md).{layout}")


def is_asset_embodiment(name: str | os.PathLike) -> bool:
    """True for a name of config/assets.yaml's ``embodiments`` (``kinesis-v1``)."""
    return isinstance(name, str) and name in load_assets_config().embodiments


def resolve_embodiment(name: str, dest: str | os.PathLike | None = None) -> Path:
    """The MJCF file of a named official embodiment; AssetsMissingError when it was not fetched."""
    config = load_assets_config()
    if name not in config.embodiments:
        raise ValueError(f"unknown official embodiment {name!r}: known {sorted(config.embodiments)}")
    root = assets_dir(dest)
    path = root / config.embodiments[name]
    if not path.is_file():
        raise _missing(f"embodiment {name!r}", config.embodiments[name], root)
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """``kinesis:NAME`` (config/assets.yaml ``checkpoints``) or ``kinesis:SOURCE/PATH`` -> the fetched file;
    anything else is returned as a Path unchanged (its existence is checked where it is loaded).

    Raises:
        ValueError: an unknown NAME (the message lists the known ones).
        AssetsMissingError: the file was not fetched (the message names ``kinesis assets fetch``).
    """
    text = os.fspath(name_or_path)
    if not text.startswith(CHECKPOINT_PREFIX):
        return Path(text)
    name = text[len(CHECKPOINT_PREFIX):]
    config = load_assets_config()
    if name in config.checkpoints:
        relative = config.checkpoints[name]
    elif "/" in name and name.split("/", 1)[0] in config.sources and ".." not in Path(name).parts:
        relative = name
    else:
        raise ValueError(f"unknown official checkpoint {text!r}: use kinesis:NAME with NAME one of "
                         f"{sorted(config.checkpoints)}, or kinesis:SOURCE/PATH with SOURCE one of "
                         f"{sorted(config.sources)}")
    root = assets_dir(dest)
    path = root / relative
    if not path.is_file():
        raise _missing(f"checkpoint {text!r}", relative, root)
    return path
