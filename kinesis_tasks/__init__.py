"""ROS-free core of KINESIS: embodiments, muscle simulation, motions, tasks, observations, rewards."""

from kinesis_tasks.embodiment import TRACKED_BODIES, load_embodiment
from kinesis_tasks.sim import MuscleSim

__all__ = ["TRACKED_BODIES", "MuscleSim", "load_embodiment"]
