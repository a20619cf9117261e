"""The references of the downstream tasks as motions: imitation training data for the task policies.

Reach and directional control hand the imitation policy a walk planned from the library's clips
(``kinesis_tasks.tasks.gait``): starts, walks time-warped to a speed and bent to a turn rate, joins at new
commands, stops. ``task_motion`` records what a task's reference does for one goal when the body follows it
exactly (each step's state is the previous step's reference), from the task's standing start and for its
time limit. Training the imitation policy on such motions (``kinesis motions from-task``) teaches it the
references the tasks will give it, with the imitation reward, which is dense, where the task rewards are
sparse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.task_env import TaskEnv, goal_to_dict
from kinesis_tasks.tasks.base import TRACKED_BODIES, TaskState

#: Root displacement (m) over which the ideal body's heading is measured, and the window (s) it may span.
HEADING_BASELINE_M, HEADING_WINDOW_S = 0.15, 0.5


def task_motion(env: TaskEnv, goal: Any, *, name: str, seconds: float | None = None,
                settle: float = 2.0) -> ReferenceMotion:
    """The reference of ``env``'s task for ``goal`` followed exactly for ``seconds`` (default: the time limit),
    or until ``settle`` s after the task is done (reach: the goal reached, where its episodes end).

    The heading of the ideal body is the direction of its root's travel over the last ``HEADING_WINDOW_S``
    (kept while it moves less than ``HEADING_BASELINE_M``), as a walking pelvis faces where it goes.
    """
    steps = int(round((env.max_time if seconds is None else seconds) / env.dt))
    start = env.start_state
    command = goal.at if hasattr(goal, "at") else (lambda time: goal)
    pos, vel, heading = start.body_pos, start.body_vel, start.heading
    frames, window, done_at = [pos], max(1, int(round(HEADING_WINDOW_S / env.dt))), None
    for step in range(steps):
        state = TaskState(body_pos=pos, body_vel=vel, heading=heading, time=step * env.dt)
        if done_at is None and env.task.done(state, command(state.time)):
            done_at = step
        if done_at is not None and (step - done_at) * env.dt >= settle:
            break
        pos, vel = env.task.reference(state, command(state.time))
        frames.append(pos)
        travel = pos[0, :2] - frames[max(0, len(frames) - 1 - window)][0, :2]
        if np.linalg.norm(travel) > HEADING_BASELINE_M:
            heading = float(np.arctan2(travel[1], travel[0]))
    return ReferenceMotion(name=name, fps=1.0 / env.dt, keypoints=np.asarray(frames), body_names=TRACKED_BODIES,
                           text=f"{env.task_name} goal", source=f"kinesis {env.task_name} task reference for "
                           f"{goal_to_dict(goal)}", licence="derived from the motion library's clips")


def task_motions(task: str, count: int, *, seed: int = 0, seconds: float | None = None) -> list[ReferenceMotion]:
    """``count`` motions of ``task`` (reach, directional) for goals drawn from its distribution with ``seed``."""
    env = TaskEnv(task)
    rng = np.random.default_rng(seed)
    return [task_motion(env, env.sample_goal(rng), name=f"{task}_{seed}_{index:03d}", seconds=seconds)
            for index in range(count)]
