"""Conversions between the policy node's ROS messages and kinesis_tasks types (goals, motions, commands).

Every ``*_from_msg`` raises ValueError naming the field when a message cannot be used (NaN, wrong sizes),
so the node can log and count it instead of crashing.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped
from geometry_msgs.msg import Twist as TwistMsg
from std_msgs.msg import Header

from kinesis_msgs.msg import MuscleCommand, SimState, TrackingStatus
from kinesis_msgs.msg import ReferenceMotion as ReferenceMotionMsg
from kinesis_policy_node.tracking import StepResult
from kinesis_sim_node.messages import WORLD_FRAME, doubles
from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.tasks import Twist


def point_from_msg(msg: PointStamped) -> np.ndarray:
    """[3] world point (m) of a PointStamped (frame ``world`` or empty, as RViz's fixed frame is assumed)."""
    point = np.array([msg.point.x, msg.point.y, msg.point.z], dtype=np.float64)
    if not np.all(np.isfinite(point)):
        raise ValueError(f"point must be finite, got {point.tolist()}")
    return point


def twist_from_msg(msg: TwistMsg) -> Twist:
    """The planar command (linear.x, linear.y, angular.z) of a geometry_msgs/Twist."""
    return Twist.from_msg(msg)


def motion_from_msg(msg: ReferenceMotionMsg) -> ReferenceMotion:
    """A ReferenceMotion message as a kinesis_tasks ReferenceMotion (keypoints [T, K, 3])."""
    keypoints = np.array(msg.keypoints, dtype=np.float64)
    shape = (int(msg.num_frames), len(msg.body_names), 3)
    if keypoints.size != int(np.prod(shape)):
        raise ValueError(f"keypoints: {keypoints.size} values, expected num_frames x body_names x 3 = {shape}")
    return ReferenceMotion(name=msg.name, fps=msg.fps, keypoints=keypoints.reshape(shape),
                           body_names=tuple(msg.body_names), text=msg.text, source="/kinesis/reference_motion")


def motion_msg(motion: ReferenceMotion, stamp: Time) -> ReferenceMotionMsg:
    """The keypoints of ``motion`` as a ReferenceMotion message."""
    return ReferenceMotionMsg(header=Header(stamp=stamp, frame_id=WORLD_FRAME), name=motion.name, text=motion.text,
                              fps=float(motion.fps), body_names=list(motion.body_names),
                              num_frames=int(motion.keypoints.shape[0]), keypoints=doubles(motion.keypoints.ravel()))


def command_msg(state: SimState, action: np.ndarray, *, embodiment: str, mode: str) -> MuscleCommand:
    """The MuscleCommand answering ``state`` with ``action`` [nu] (clipped to [-1, 1], as the simulator does)."""
    return MuscleCommand(header=Header(stamp=state.header.stamp, frame_id=WORLD_FRAME), state_stamp=state.header.stamp,
                         state_step=state.step, embodiment=embodiment, mode=mode,
                         values=doubles(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)))


def tracking_msg(result: StepResult, stamp: Time) -> TrackingStatus:
    """TrackingStatus of one step."""
    return TrackingStatus(header=Header(stamp=stamp, frame_id=WORLD_FRAME), motion=result.motion, frame=result.frame,
                          mpjpe_mm=result.mpjpe_mm, reward=result.reward, terminated=result.terminated,
                          task=result.task, success=result.success)
