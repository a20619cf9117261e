"""text_to_motion_node: /text_command (std_msgs/String) -> a composed /kinesis/reference_motion, or a refusal.

Run: ``python -m kinesis_policy_node.text_to_motion_node [--ros-args -p text:="walk forward" -p motion_library:=default]``.
Each prompt goes through ``kinesis_tasks.tasks.text_to_motion.TextToMotion`` (rules read the steps, speed,
turn and duration; sentence embeddings match the library's labels and paraphrases; clips are chosen by
intent and composed). A motion is published (latched: transient local, depth 1) for the policy node to
track. A prompt the library cannot do (a jump, a flip, sitting, running without a running clip, an
unrelated sentence) publishes no motion: the node logs a warning "cannot do '<prompt>': <reason>;
closest: '<label>'", so the robot keeps doing what it did.

Every prompt is answered on ``/text_feedback`` (std_msgs/String, latched, depth 1): a JSON object with
``prompt``, ``ok``, ``refused``, ``reason``, ``closest`` (the label of the closest thing the library can do),
``message``, ``clips`` (the clips composed), ``label``, ``motion`` (the published motion's name) and
``duration_s``; an empty prompt gives ``ok`` false with the reason. Parameters: ``text`` (first prompt,
empty = none) and ``motion_library`` (default, a library .npz or folder, or an MDM results.npy).
"""

from __future__ import annotations

import json

from rclpy.node import Node
from std_msgs.msg import String

from kinesis_msgs.msg import ReferenceMotion
from kinesis_policy_node.goals import motion_msg
from kinesis_sim_node.messages import SIM_STATE_QOS
from kinesis_sim_node.spin import spin_node

FEEDBACK = "/text_feedback"


class TextToMotionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("text_to_motion_node", **kwargs)
        text = str(self.declare_parameter("text", "").value)
        library = str(self.declare_parameter("motion_library", "default").value)
        from kinesis_tasks.tasks.text_to_motion import TextToMotion  # loads the sentence encoder

        self.text_to_motion = TextToMotion.from_source(library)
        self.reference_pub = self.create_publisher(ReferenceMotion, "/kinesis/reference_motion", SIM_STATE_QOS)
        self.feedback_pub = self.create_publisher(String, FEEDBACK, SIM_STATE_QOS)
        self.create_subscription(String, "/text_command", self.on_text, 10)
        self.get_logger().info(f"ready: {len(self.text_to_motion.motions)} motions of {library!r}")
        if text:
            self.on_text(String(data=text))

    def on_text(self, msg: String) -> None:
        try:
            result = self.text_to_motion(msg.data)
        except ValueError as error:  # an empty prompt
            self.get_logger().warning(f"text command {msg.data!r} ignored: {error}")
            self.feedback({"prompt": msg.data, "ok": False, "refused": False, "reason": str(error), "closest": None,
                           "message": f"ignored: {error}", "clips": [], "label": None, "motion": None,
                           "duration_s": None})
            return
        if not result.ok:
            self.get_logger().warning(result.message)  # cannot do '<prompt>': <reason>; closest: '<label>'
        else:
            self.reference_pub.publish(motion_msg(result.motion, self.get_clock().now().to_msg()))
            self.get_logger().info(f"{msg.data!r} -> {result.motion.name}: {result.message}")
        self.feedback(result.feedback())

    def feedback(self, answer: dict) -> None:
        self.feedback_pub.publish(String(data=json.dumps(answer)))


def main(args: list[str] | None = None) -> int:
    return spin_node(TextToMotionNode, "text_to_motion_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
