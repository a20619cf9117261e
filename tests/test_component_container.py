"""kinesis_sim_node.component_container: the command line, and the ROS 2 container services
(composition_interfaces LoadNode / ListNodes / UnloadNode, as launch_ros and `ros2 component` call them)
on a real container process."""

import subprocess
import sys
from contextlib import ExitStack

import pytest
from composition_interfaces.srv import ListNodes, LoadNode, UnloadNode
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters
from std_srvs.srv import SetBool

from kinesis.launch import interrupt_group, private_ros_environment
from kinesis_msgs.msg import SimState
from kinesis_msgs.srv import Step
from kinesis_sim_node.component_container import parse_components
from kinesis_sim_node.messages import SIM_STATE_QOS
from ros_client import TIMEOUT_S, RosTestClient

CONTAINER = "kinesis_sim_node.component_container"


def test_command_line_and_bad_plugins():
    assert parse_components(["--load", "a.B", "-p", "x:=1", "--load", "c.D", "--ros-args", "--log-level", "warn"]) == (
        [("a.B", ["-p", "x:=1"]), ("c.D", [])], ["--ros-args", "--log-level", "warn"])
    assert parse_components(["--ros-args", "-r", "__node:=box"]) == ([], ["--ros-args", "-r", "__node:=box"])
    for argv, message in ((["kinesis_sim_node.sim_node.SimNode"], "expected --load PLUGIN"),
                          (["--load", "kinesis_sim_node.sim_node.NoSuchNode"], "plugin 'kinesis_sim_node.sim_node.NoSuchNode' is not"),
                          (["--load", "kinesis_sim_node.messages.SIM_STATE_QOS"], "is not an rclpy Node class"),
                          (["--load"], "needs a plugin")):
        result = subprocess.run([sys.executable, "-P", "-m", CONTAINER, *argv], capture_output=True, text=True, timeout=TIMEOUT_S)
        assert result.returncode == 2 and message in result.stderr, (argv, result.stderr)


def string_parameter(name: str, value: str) -> Parameter:
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))


@pytest.mark.ros
def test_load_list_and_unload_through_the_container_services(tmp_path):
    domain_id, env = private_ros_environment(range(100, 200))
    log = tmp_path / "container.log"
    processes = {}
    with ExitStack() as stack:
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-P", "-m", CONTAINER, "--ros-args", "-r", "__node:=box"],
                                       env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        processes["container"] = (process, log)
        stack.callback(interrupt_group, process)
        client = RosTestClient("container_test_client", domain_id, processes, TIMEOUT_S)
        stack.callback(client.close)
        first = client.call(ListNodes, "/box/_container/list_nodes", ListNodes.Request(), resend_after=5.0)
        assert first.unique_ids.tolist() == []

        # As launch_ros sends a composable_node: package, plugin, name, namespace, remaps, parameters.
        request = LoadNode.Request(package_name="kinesis_sim_node", plugin_name="kinesis_sim_node.sim_node.SimNode",
                                   node_name="sim", node_namespace="/robot", remap_rules=["/kinesis/sim_state:=state"],
                                   parameters=[string_parameter("clock", "lockstep"), string_parameter("control_mode", "direct")])
        loaded = client.call(LoadNode, "/box/_container/load_node", request)
        assert loaded.success, loaded.error_message
        assert loaded.full_node_name == "/robot/sim" and loaded.unique_id == 1
        states = []
        client.node.create_subscription(SimState, "/robot/state", states.append, SIM_STATE_QOS)
        assert client.call(SetBool, "/robot/sim/pause", SetBool.Request(data=True)).success
        assert client.call(Step, "/robot/sim/step", Step.Request(n=3)).step == 3  # lockstep, direct: its parameters
        client.spin_until(lambda: states and states[-1].step == 3, "the remapped state of step 3")
        values = client.call(GetParameters, "/robot/sim/get_parameters", GetParameters.Request(names=["control_mode"])).values
        assert [v.string_value for v in values] == ["direct"]

        wrong = client.call(LoadNode, "/box/_container/load_node",
                            LoadNode.Request(package_name="kinesis_policy_node", plugin_name="kinesis_sim_node.sim_node.SimNode"))
        assert not wrong.success and "is not a class of package 'kinesis_policy_node'" in wrong.error_message
        bad = client.call(LoadNode, "/box/_container/load_node",
                          LoadNode.Request(package_name="kinesis_sim_node", plugin_name="kinesis_sim_node.sim_node.SimNode",
                                           node_name="sim2", parameters=[string_parameter("embodiment", "no_such_model")]))
        assert not bad.success and "no_such_model" in bad.error_message

        listed = client.call(ListNodes, "/box/_container/list_nodes", ListNodes.Request())
        assert (listed.full_node_names, listed.unique_ids.tolist()) == (["/robot/sim"], [1])
        assert client.call(UnloadNode, "/box/_container/unload_node", UnloadNode.Request(unique_id=1)).success
        assert not client.call(UnloadNode, "/box/_container/unload_node", UnloadNode.Request(unique_id=1)).success
        assert client.call(ListNodes, "/box/_container/list_nodes", ListNodes.Request()).unique_ids.tolist() == []
        assert process.poll() is None  # bad requests are answered, the container lives on
