"""Read the YAML files of the repository's ``config/`` folder."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@cache
def load_config(name: str) -> dict[str, Any]:
    """Parsed ``config/<name>.yaml`` (cached; treat the result as read-only)."""
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no config {name!r} in {CONFIG_DIR} (known: {known})")
    with path.open() as stream:
        return yaml.safe_load(stream)
