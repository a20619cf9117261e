"""sim_node and policy_node composed in one process (ROS 2 composition): one executor spins both.

Run: ``python -m kinesis_policy_node.composed --ros-args -p clock:=lockstep -p checkpoint:=model.pth ...``.
Each parameter goes to the node that declares it (``embodiment`` and ``control_mode`` to both, as they
must match); a node-name prefix gives a name to one node only (``-p sim_node:embodiment:=...``).

The nodes talk over their topics exactly as separate processes do: the graph, the topics and the
services are the same. Composition saves the process hop: no other process to wake for every message
and warm caches. In lockstep that runs about 1.3x faster than two processes (docs/performance.md, "ROS 2").
"""

from __future__ import annotations

from kinesis_policy_node.policy_node import PolicyNode
from kinesis_sim_node.sim_node import SimNode
from kinesis_sim_node.spin import spin_nodes


def main(args: list[str] | None = None) -> int:
    return spin_nodes((SimNode, PolicyNode), "composed", args)


if __name__ == "__main__":
    raise SystemExit(main())
