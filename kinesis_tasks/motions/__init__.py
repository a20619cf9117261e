"""Reference motions: tracked-body keypoints over time, libraries with splits, and converters.

Public API: ``ReferenceMotion``, ``load_library``, ``save_library``, ``load_motion``,
``default_library_path``, ``library_splits``, ``parse_library_spec``, ``save_motion``. Converters live in
submodules (``gait``, ``gaitanalysis``, ``variants``, ``amass``, ``mdm``) and import
their heavy dependencies (mujoco, smplx, torch) only when used.
"""

from kinesis_tasks.motions.library import (
    default_library_path,
    library_splits,
    load_library,
    load_motion,
    parse_library_spec,
    save_library,
)
from kinesis_tasks.motions.motion import DEFAULT_BODIES, HEAD_BODY, ReferenceMotion, save_motion

__all__ = [
    "DEFAULT_BODIES",
    "HEAD_BODY",
    "ReferenceMotion",
    "default_library_path",
    "library_splits",
    "load_library",
    "load_motion",
    "parse_library_spec",
    "save_library",
    "save_motion",
]
