"""Mirror images of reference motions: left and right swapped, reflected in the world x-z plane.

MyoLegs is left-right symmetric, so the mirror image of a motion it can track is a motion it can track:
a left turn becomes a right turn, a start on the left foot a start on the right. ``mirror_motion`` reflects
the keypoints (y -> -y, ``_l``/``_r`` bodies swapped) and, when the motion carries them, the embodiment's
joint positions (``kinesis_tasks.symmetry.StateMirror``: hinges swapped with their partners, the free root
reflected) and the root orientation; "left" and "right" swap in the text. Walking stays along +x.
"""

from __future__ import annotations

import re
from dataclasses import replace

import mujoco
import numpy as np

from kinesis_tasks import observations
from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.motions.motion import ReferenceMotion
from kinesis_tasks.symmetry import WORLD_MIRROR, StateMirror, swapped_name

MIRROR_SUFFIX = "_mirrored"
_SIDES = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}


def mirrored_text(text: str) -> str:
    """``text`` with the words left and right swapped."""
    return re.sub(r"\b(left|right|Left|Right)\b", lambda m: _SIDES[m.group(1)], text)


def mirror_motion(motion: ReferenceMotion, model: mujoco.MjModel | None = None) -> ReferenceMotion:
    """The mirror image of ``motion``, named ``<name>_mirrored`` (see the module docstring).

    ``model``: the embodiment of ``motion.qpos`` (default: loaded from ``motion.embodiment``); not needed for a
    motion without qpos and root orientation.
    """
    partner = [motion.body_names.index(swapped_name(name)) if swapped_name(name) in motion.body_names else i
               for i, name in enumerate(motion.body_names)]
    fields = {"name": motion.name + MIRROR_SUFFIX, "keypoints": motion.keypoints[:, partner] @ WORLD_MIRROR,
              "text": mirrored_text(motion.text), "source": f"mirror image of {motion.name} ({motion.source})"}
    if motion.qpos is not None or motion.root_quat is not None:
        if model is None:
            if not motion.embodiment:
                raise ValueError(f"motion {motion.name!r}: mirroring its root orientation needs the embodiment model")
            model = load_embodiment(motion.embodiment)
        mirror = StateMirror(model, observations.body_layout(model))
        if motion.qpos is not None:
            fields["qpos"] = np.stack([mirror.qpos(q) for q in motion.qpos])
        if motion.root_quat is not None:
            fields["root_quat"] = np.stack([mirror.quat(q) for q in motion.root_quat])
    return replace(motion, **fields)
