"""The MuJoCo model a node simulates or draws: an embodiment alone, or a task scene built around it.

Scenes (parameter ``scene`` of sim_node and viz_node):

* ``""``: the embodiment alone (``kinesis_tasks.load_embodiment``);
* ``soccer``: the penalty-kick scene of ``kinesis_tasks.soccer`` (``legs_back`` only): the kicker,
  a ball on a free joint, the goal and a goalkeeper (``goalkeeper`` of config/tasks.yaml). The
  ball's 7 qpos and 6 qvel come after the embodiment's, so the first nq/nv entries of a SimState
  keep the embodiment's layout.
"""

from __future__ import annotations

import mujoco

from kinesis_tasks import load_embodiment, soccer

SCENES = ("", "soccer")


def load_scene(embodiment: str, scene: str) -> mujoco.MjModel:
    """The compiled model of ``scene`` for ``embodiment``.

    Raises:
        ValueError: an unknown scene, or a scene that does not fit the embodiment.
    """
    if scene == "":
        return load_embodiment(embodiment)
    if scene == "soccer":
        if embodiment != soccer.EMBODIMENT:
            raise ValueError(f"parameter scene: 'soccer' needs embodiment {soccer.EMBODIMENT!r} (the kicker), "
                             f"got {embodiment!r}")
        return soccer.build_soccer_model()[0]
    raise ValueError(f"parameter scene must be one of {SCENES}, got {scene!r}")
