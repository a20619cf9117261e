"""Downstream tasks: goals turned into references for the imitation policy (see docs/tasks.md).

Text-to-motion lives in ``kinesis_tasks.tasks.text_to_motion`` (imported on use: it loads a
sentence-embedding model).
"""

from kinesis_tasks.tasks.base import Task, TaskState, facing_heading, state_from_data
from kinesis_tasks.tasks.directional import DirectionalGoal, DirectionalTask, Twist, twist_to_goal
from kinesis_tasks.tasks.kick import GoalMouth, KickTask, ball_in_goal
from kinesis_tasks.tasks.reach import ReachTask

__all__ = [
    "DirectionalGoal",
    "DirectionalTask",
    "GoalMouth",
    "KickTask",
    "ReachTask",
    "Task",
    "TaskState",
    "Twist",
    "ball_in_goal",
    "facing_heading",
    "state_from_data",
    "twist_to_goal",
]
