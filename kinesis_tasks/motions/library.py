"""Motion libraries: many ReferenceMotions with named splits (``train``, ``test``).

A library is either

* one ``.npz`` file (what ``save_library(path.npz, ...)`` writes): motion i's arrays
  under the prefix ``m<i>/``, the split lists under ``split/<name>``; or
* a folder of ``.npz`` files (single motions or library files), with optional
  ``<split>.txt`` files listing motion names one per line (like the KIT key lists).

``"default"`` names the library embedded in the package (see ``default_library_path``); ``"planner"`` the
gait planner's clips embedded beside it (``packaged_library_path``).
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from kinesis_tasks.motions.motion import (
    MOTION_FORMAT,
    ReferenceMotion,
    read_motion_file,
    read_npz,
    save_motion,
    write_npz_atomic,
)

LIBRARY_FORMAT = "kinesis-motion-library-1"

Splits = dict[str, tuple[str, ...]]


PACKAGED_LIBRARIES = ("default", "planner")


def packaged_library_path(name: str) -> Path:
    """Path of a library embedded in the package (``kinesis_tasks/data/motions/<name>.npz``)."""
    return Path(str(resources.files("kinesis_tasks") / "data" / "motions" / f"{name}.npz"))


def default_library_path() -> Path:
    """Path of the embedded default library (``kinesis_tasks/data/motions/default.npz``)."""
    return packaged_library_path("default")


def resolve_library(path_or_name: str | Path) -> Path:
    """A ``PACKAGED_LIBRARIES`` name -> the embedded library; otherwise the path (FileNotFoundError if missing)."""
    name = str(path_or_name)
    path = packaged_library_path(name) if name in PACKAGED_LIBRARIES else Path(path_or_name).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"motion library not found: {path} (use {' or '.join(map(repr, PACKAGED_LIBRARIES))}"
                                " or a .npz file or folder)")
    return path


def read_library(path_or_name: str | Path = "default") -> tuple[dict[str, ReferenceMotion], Splits]:
    """All motions (by name, in file order) and the splits of a library."""
    path = resolve_library(path_or_name)
    if path.is_dir():
        return _read_folder(path)
    return _read_library_file(path)


def parse_library_spec(spec: str) -> tuple[str, str | None]:
    """``'LIB[:split]'`` -> (LIB, split or None): ``default:test`` -> ("default", "test"); a bare path (also one
    with a drive letter, ``C:\\x.npz``) -> (path, None)."""
    library, _, split = spec.rpartition(":")
    if library and split and "/" not in split and "\\" not in split:
        return library, split
    return spec, None


def load_library(path_or_name: str | Path = "default", split: str | None = None) -> dict[str, ReferenceMotion]:
    """Motions of a library by name, optionally only those of ``split`` (e.g. ``"train"``, ``"test"``).

    Raises:
        FileNotFoundError: no such library.
        ValueError: unreadable file, or a split the library does not define (the message lists them).
    """
    motions, splits = read_library(path_or_name)
    if split is None:
        return motions
    if split not in splits:
        raise ValueError(f"library {path_or_name} has no split {split!r}; it has {sorted(splits) or 'none'}")
    return {name: motions[name] for name in splits[split]}


def library_splits(path_or_name: str | Path = "default") -> Splits:
    """The split name -> motion names table of a library."""
    return read_library(path_or_name)[1]


def load_motion(name_or_path: str | Path, library: str | Path = "default") -> ReferenceMotion:
    """One motion: a single-motion ``.npz`` path, or a motion name looked up in ``library``.

    Raises:
        ValueError: unknown name (the message lists close matches) or unreadable file.
    """
    path = Path(name_or_path).expanduser()
    if path.suffix == ".npz" and path.is_file():
        return read_motion_file(path)
    motions = load_library(library)
    return find_motion(motions, str(name_or_path), str(library))


def find_motion(motions: Mapping[str, ReferenceMotion], name: str, library: str = "library") -> ReferenceMotion:
    """``motions[name]``, or a ValueError that suggests close matches."""
    if name in motions:
        return motions[name]
    close = difflib.get_close_matches(name, list(motions), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; {len(motions)} motions, see `kinesis motions list`"
    raise ValueError(f"no motion named {name!r} in {library}{hint}")


def save_library(path: str | Path, motions: Iterable[ReferenceMotion] | Mapping[str, ReferenceMotion],
                 splits: Mapping[str, Iterable[str]] | None = None) -> Path:
    """Write a library: one compressed ``.npz`` if ``path`` ends in .npz, else a folder.

    Every file is written to a temporary name first and then moved into place.
    Split lists must name motions of the library.
    """
    path = Path(path)
    motion_list = list(motions.values()) if isinstance(motions, Mapping) else list(motions)
    names = [motion.name for motion in motion_list]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"save_library {path}: duplicate motion names {duplicates}")
    split_table = {split: tuple(members) for split, members in (splits or {}).items()}
    for split, members in split_table.items():
        unknown = sorted(set(members) - set(names))
        if unknown:
            raise ValueError(f"save_library {path}: split {split!r} names unknown motions {unknown[:5]}")
    if path.suffix == ".npz":
        arrays: dict[str, np.ndarray] = {"format": np.asarray(LIBRARY_FORMAT)}
        for index, motion in enumerate(motion_list):
            arrays.update(motion.to_arrays(prefix=f"m{index:05d}/"))
        for split, members in split_table.items():
            arrays[f"split/{split}"] = np.asarray(members, dtype=np.str_).reshape(-1)
        return write_npz_atomic(path, arrays)
    path.mkdir(parents=True, exist_ok=True)
    for motion in motion_list:
        save_motion(motion, path / f"{motion.name}.npz")
    for split, members in split_table.items():
        _write_text_atomic(path / f"{split}.txt", "".join(f"{name}\n" for name in members))
    return path


def _read_library_file(path: Path) -> tuple[dict[str, ReferenceMotion], Splits]:
    arrays = read_npz(path)
    kind = str(arrays.get("format", ""))
    if kind == MOTION_FORMAT:
        motion = ReferenceMotion.from_arrays(arrays, origin=str(path))
        return {motion.name: motion}, {}
    if kind != LIBRARY_FORMAT:
        raise ValueError(f"{path}: not a motion library (format {kind or 'missing'!r}, expected {LIBRARY_FORMAT!r})")
    prefixes = sorted({key.split("/", 1)[0] for key in arrays if key.startswith("m") and "/" in key})
    motions: dict[str, ReferenceMotion] = {}
    for prefix in prefixes:
        motion = ReferenceMotion.from_arrays(arrays, prefix=prefix + "/", origin=f"{path} [{prefix}]")
        if motion.name in motions:
            raise ValueError(f"{path}: motion name {motion.name!r} appears twice")
        motions[motion.name] = motion
    splits = {key[len("split/"):]: tuple(str(n) for n in np.atleast_1d(value))
              for key, value in arrays.items() if key.startswith("split/")}
    _check_splits(path, motions, splits)
    return motions, splits


def _read_folder(folder: Path) -> tuple[dict[str, ReferenceMotion], Splits]:
    motions: dict[str, ReferenceMotion] = {}
    for file in sorted(folder.glob("*.npz")):
        part, _ = _read_library_file(file)
        clash = sorted(set(part) & set(motions))
        if clash:
            raise ValueError(f"{file}: motion names already in {folder}: {clash[:5]}")
        motions.update(part)
    splits = {file.stem: tuple(line.strip() for line in file.read_text().splitlines() if line.strip())
              for file in sorted(folder.glob("*.txt"))}
    _check_splits(folder, motions, splits)
    return motions, splits


def _check_splits(path: Path, motions: Mapping[str, ReferenceMotion], splits: Splits) -> None:
    for split, members in splits.items():
        unknown = [name for name in members if name not in motions]
        if unknown:
            raise ValueError(f"{path}: split {split!r} names motions that are not in the library: {unknown[:5]}")


def _write_text_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
