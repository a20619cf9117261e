"""`kinesis launch`: parsing of ROS 2 YAML launch files, and real runs of the runner.

Runs start `python -m kinesis.launch_cli` on small launch files in tmp_path and check the prefixed
output, the exit status, the stop sequence and that no process of any started process group is
left (scanned in /proc; zombies aside).
"""

import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinesis import launch_file
from kinesis.launch import private_ros_environment
from kinesis_sim_node.component_container import parse_components
from ros_client import TIMEOUT_S, mcap_channels

RUNNER = [sys.executable, "-P", "-m", "kinesis.launch_cli", "--sigint-timeout", "1", "--sigterm-timeout", "1"]
DEMOS = ("locomotion", "text_to_motion", "target_reach", "directional", "ball_kick")


def write(tmp_path: Path, text: str, name: str = "test.launch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def python_cmd(code: str, *args: str) -> str:
    """An `executable` cmd running ``code`` (no double quotes) with this interpreter."""
    return shlex.join([sys.executable, "-c", code, *args])


def start_runner(path: Path) -> subprocess.Popen:
    """`kinesis launch path` with an unbuffered binary pipe, so select() sees every line."""
    return subprocess.Popen([*RUNNER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)


def read_until(runner: subprocess.Popen, lines: list[str], done) -> None:
    """Append the runner's output lines to ``lines`` until ``done()``; fail after TIMEOUT_S or if it exits."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline and runner.poll() is None, "\n".join(lines)
        if select.select([runner.stdout], [], [], 0.1)[0]:
            lines.append(runner.stdout.readline().decode().rstrip("\n"))


# --- parsing ----------------------------------------------------------------------------------


def test_node_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KINESIS_TEST_RATE", "60")
    params = write(tmp_path, "/**:\n  ros__parameters: {a: 1}\n", "params.yaml")
    path = write(tmp_path, f"""
launch:
- arg: {{name: world, default: legs}}
- arg: {{name: headless, default: "false"}}
- let: {{name: label, value: "sim_$(var world)"}}
- node:
    pkg: kinesis_sim_node
    exec: sim_node
    name: $(var label)
    namespace: robot
    param:
    - {{name: embodiment, value: $(var world)}}
    - {{name: rate, value: $(env KINESIS_TEST_RATE 30)}}
    - {{name: missing, value: $(env KINESIS_TEST_UNSET_VARIABLE 2.5)}}
    - {{name: foxglove, value: $(not $(var headless))}}
    - {{name: record, value: ""}}
    - {{name: target, value: "[3.0, 1.0]"}}
    - {{name: same, value: $(equals $(var world) legs)}}
    - from: $(dirname)/params.yaml
    remap:
    - {{from: /joint_states, to: /robot/joint_states}}
    on_exit: shutdown
""")
    plan = launch_file.load_launch(path, {"world": "legs_back"})
    (process,) = plan.processes
    assert process.name == "sim_legs_back" and process.shutdown_on_exit
    assert process.cmd == (
        sys.executable, "-P", "-m", "kinesis_sim_node.sim_node", "--ros-args",
        "-r", "__node:=sim_legs_back", "-r", "__ns:=/robot",
        "-p", "embodiment:=legs_back", "-p", "rate:=60", "-p", "missing:=2.5", "-p", "foxglove:=true",
        "-p", "record:=''", "-p", "target:=[3.0, 1.0]", "-p", "same:=false", "--params-file", str(params),
        "-r", "/joint_states:=/robot/joint_states",
    )
    assert process.env["PYTHONUNBUFFERED"] == "1"
    assert plan.arguments["world"].value == "legs_back" and plan.arguments["world"].default == "legs"
    assert plan.duration == 0.0


def test_find_pkg_share_uses_the_ament_index(tmp_path):
    path = write(tmp_path, "launch:\n- executable: {cmd: echo $(find-pkg-share std_msgs)/msg, name: e}\n")
    (process,) = launch_file.load_launch(path).processes
    share = Path(process.cmd[1])
    assert share == Path(sys.prefix) / "share" / "std_msgs" / "msg" and (share / "Header.msg").is_file()


def test_include_conditions_and_unique_names(tmp_path):
    write(tmp_path, """
launch:
- arg: {name: who, default: inner}
- executable: {cmd: echo $(var who), name: say}
""", "inner.launch.yaml")
    path = write(tmp_path, """
launch:
- arg: {name: extra, default: "false"}
- include: {file: inner.launch.yaml}
- include: {file: $(dirname)/inner.launch.yaml, arg: [{name: who, value: outer}]}
- executable: {cmd: echo extra, name: extra, if: $(var extra)}
- executable: {cmd: echo plain, name: plain, unless: $(var extra)}
""")
    names = lambda plan: [(p.name, p.cmd[-1]) for p in plan.processes]  # noqa: E731
    assert names(launch_file.load_launch(path)) == [("say", "inner"), ("say-2", "outer"), ("plain", "plain")]
    assert names(launch_file.load_launch(path, {"extra": "1"})) == [("say", "inner"), ("say-2", "outer"), ("extra", "extra")]


@pytest.mark.parametrize("text, arguments, message", [
    ("launch:\n- arg: {name: a}\n", {}, "launch argument 'a' is required"),
    ("launch:\n- arg: {name: a, default: x}\n", {"b": "1"}, "unknown launch argument(s) ['b']"),
    ("launch:\n- arg: {name: a, default: x, choices: [x, y]}\n", {"a": "z"}, "is not one of"),
    ("launch:\n- group: {}\n", {}, "unsupported launch action 'group'"),
    ("launch:\n- node: {pkg: p, exec: e, parm: []}\n", {}, "unknown attribute(s) ['parm']"),
    ("launch:\n- executable: {cmd: echo $(var nope)}\n", {}, "no launch argument or variable of that name"),
    ("launch:\n- executable: {cmd: echo $(eval 1+1)}\n", {}, "unsupported substitution $(eval"),
    ("launch:\n- executable: {cmd: echo $(var a}\n", {}, "unclosed substitution"),
    ("launch:\n- executable: {cmd: echo $(find-pkg-share no_such_package_here)}\n", {}, "not found in the ament index"),
    ("launch:\n- executable: {cmd: echo, on_exit: restart}\n", {}, "on_exit must be 'shutdown'"),
    ("nodes: []\n", {}, "'launch:' list"),
])
def test_errors_name_the_problem(tmp_path, text, arguments, message):
    with pytest.raises(ValueError) as error:
        launch_file.load_launch(write(tmp_path, text), arguments)
    assert message in str(error.value)


def test_launch_arguments_and_names():
    assert launch_file.parse_launch_arguments(["a:=1", "b:=", "c:=x:=y"]) == {"a": "1", "b": "", "c": "x:=y"}
    with pytest.raises(ValueError, match="name:=value"):
        launch_file.parse_launch_arguments(["a=1"])
    assert launch_file.resolve_launch_file("locomotion") == launch_file.LAUNCH_DIR / "locomotion.launch.yaml"
    with pytest.raises(FileNotFoundError, match="locomotion"):
        launch_file.resolve_launch_file("no_such_demo")


def test_node_container_and_load_composable_node(tmp_path):
    path = write(tmp_path, """
launch:
- arg: {name: clock, default: lockstep}
- node_container:
    pkg: kinesis_sim_node
    exec: component_container
    name: box
    namespace: /robot
    on_exit: shutdown
    ros_args: --log-level warn
    composable_node:
    - pkg: kinesis_sim_node
      plugin: kinesis_sim_node.sim_node.SimNode
      name: sim
      param: [{name: clock, value: $(var clock)}]
- executable: {cmd: echo between, name: between}
- load_composable_node:
    target: /robot/box
    composable_node:
    - pkg: kinesis_policy_node
      plugin: kinesis_policy_node.policy_node.PolicyNode
      namespace: robot
      remap: [{from: /kinesis/sim_state, to: state}]
""")
    container, between = launch_file.load_launch(path).processes
    assert container.name == "box" and container.shutdown_on_exit and between.name == "between"
    assert container.cmd == (
        sys.executable, "-P", "-m", "kinesis_sim_node.component_container",
        "--load", "kinesis_sim_node.sim_node.SimNode", "-r", "__node:=sim", "-p", "clock:=lockstep",
        "--load", "kinesis_policy_node.policy_node.PolicyNode", "-r", "__ns:=/robot", "-r", "/kinesis/sim_state:=state",
        "--ros-args", "-r", "__node:=box", "-r", "__ns:=/robot", "--log-level", "warn",
    )


@pytest.mark.parametrize("entries, message", [
    ("- load_composable_node: {target: box, composable_node: []}\n", "no node_container 'box' before it"),
    ("- node_container: {pkg: p, exec: c, name: box, composable_node: [{pkg: p, plugin: q.Node}]}\n",
     "plugin 'q.Node' is not a class of package 'p'"),
    ("- node_container: {pkg: p, exec: c, name: box, composable_node: [{pkg: p, plugin: p.N, exec: x}]}\n",
     "composable_node: unknown attribute(s) ['exec']"),
    ("- node_container: {pkg: p, exec: c, composable_node: []}\n", "'name'"),
])
def test_container_errors_name_the_problem(tmp_path, entries, message):
    with pytest.raises(ValueError) as error:
        launch_file.load_launch(write(tmp_path, "launch:\n" + entries))
    assert message in str(error.value)


def loaded_nodes(cmd: tuple[str, ...]) -> dict[str, str]:
    """Node name -> plugin of a component container's command line."""
    components, _ = parse_components(list(cmd[cmd.index("-m") + 2:]))
    return {args[args.index("-r") + 1].removeprefix("__node:="): plugin for plugin, args in components}


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_launch_files(demo):
    plan = launch_file.load_launch(launch_file.resolve_launch_file(demo), {"headless": "true", "duration": "4", "record": "/tmp/x.mcap"})
    modules = {p.name: p.cmd[p.cmd.index("-m") + 1] for p in plan.processes}
    expected = {"control_container": "kinesis_sim_node.component_container", "viz_node": "kinesis_sim_node.viz_node"}
    if demo == "text_to_motion":
        expected["text_to_motion_node"] = "kinesis_policy_node.text_to_motion_node"
    assert modules == expected
    assert plan.duration == 4.0
    by_name = {p.name: p for p in plan.processes}
    container = by_name["control_container"]
    assert container.shutdown_on_exit  # the sim node's process ends the launch
    assert loaded_nodes(container.cmd) == {"sim_node": "kinesis_sim_node.sim_node.SimNode",
                                           "policy_node": "kinesis_policy_node.policy_node.PolicyNode"}
    viz = by_name["viz_node"].cmd
    assert "foxglove:=false" in viz and "record:=/tmp/x.mcap" in viz
    half = launch_file.load_launch(launch_file.resolve_launch_file(demo), {"weights": "float16"}).processes[0].cmd
    assert "weights:=float32" in container.cmd and "weights:=float16" in half
    viewer = {p.name: p for p in launch_file.load_launch(launch_file.resolve_launch_file(demo)).processes}["viz_node"]
    assert "foxglove:=true" in viewer.cmd and "record:=''" in viewer.cmd


def test_cli_registers_launch():
    from kinesis.cli import build_parser

    args = build_parser().parse_args(["launch", "--print", "locomotion", "headless:=true"])
    assert args.launch_file == "locomotion" and args.arguments == ["headless:=true"] and args.print_only


# --- running ----------------------------------------------------------------------------------


def started_pids(output: str) -> dict[str, int]:
    """{name: pid} from the runner's "[launch] started NAME (pid N)" lines."""
    pids = {}
    for line in output.splitlines():
        if line.startswith("[launch] started "):
            name, pid = line.removeprefix("[launch] started ").split(" (pid ")
            pids[name] = int(pid.split(")")[0])
    return pids


def group_members(pgids) -> list[str]:
    """Live (non-zombie) processes in any of the process groups ``pgids``, as "pid state cmd"."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) in pgids and fields[0] != "Z":
            found.append(f"{entry.name} {fields[0]} {stat[stat.index('(') + 1:stat.rindex(')')]}")
    return found


def assert_no_orphans(pids: dict[str, int]) -> None:
    deadline = time.monotonic() + 3.0
    while group_members(set(pids.values())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(set(pids.values())) == []


def run_launch(path: Path, *arguments: str, env: dict | None = None, timeout: float = TIMEOUT_S) -> tuple[int, str, float]:
    start = time.monotonic()
    result = subprocess.run([*RUNNER, str(path), *arguments], capture_output=True, text=True, timeout=timeout, env=env)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


SLEEPER = "import sys, time; print(*sys.argv[1:], flush=True); time.sleep(60)"


def test_prefixed_output_and_duration(tmp_path):
    path = write(tmp_path, f"""
launch:
- arg: {{name: duration, default: "0"}}
- executable: {{cmd: "{python_cmd(SLEEPER, 'hello from a')}", name: first}}
- executable: {{cmd: "{python_cmd(SLEEPER, 'hello from b')}", name: second}}
""")
    status, output, elapsed = run_launch(path, "duration:=1.5")
    assert status == 0, output
    assert "[first] hello from a" in output.splitlines() and "[second] hello from b" in output.splitlines()
    assert "[launch] duration of 1.5 s reached: sending SIGINT to first, second" in output
    assert 1.5 <= elapsed < 10.0
    assert set(started_pids(output)) == {"first", "second"}
    assert_no_orphans(started_pids(output))


def test_failing_node_stops_the_launch_with_its_status(tmp_path):
    path = write(tmp_path, f"""
launch:
- executable: {{cmd: "{python_cmd(SLEEPER, 'up')}", name: steady}}
- executable: {{cmd: "{python_cmd('import sys, time; time.sleep(0.3); sys.exit(3)')}", name: broken}}
""")
    status, output, elapsed = run_launch(path)
    assert status == 3, output
    assert "[launch] broken exited with status 3" in output
    assert "[launch] broken failed: sending SIGINT to steady" in output
    assert elapsed < 10.0
    assert_no_orphans(started_pids(output))


def test_on_exit_shutdown(tmp_path):
    path = write(tmp_path, f"""
launch:
- executable: {{cmd: "{python_cmd(SLEEPER, 'up')}", name: steady}}
- executable: {{cmd: "{python_cmd('import sys; print(sys.argv[1])', 'done')}", name: oneshot, on_exit: shutdown}}
""")
    status, output, elapsed = run_launch(path)
    assert status == 0, output
    assert "[oneshot] done" in output
    assert "[launch] oneshot exited (on_exit: shutdown): sending SIGINT to steady" in output
    assert_no_orphans(started_pids(output))


def test_ctrl_c_escalates_and_leaves_no_process(tmp_path):
    ready = "import signal, sys, time; {ignore} print(sys.argv[1], flush=True); time.sleep(60)"
    ignore_int = "signal.signal(signal.SIGINT, signal.SIG_IGN);"
    ignore_both = ignore_int + " signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    path = write(tmp_path, f"""
launch:
- executable: {{cmd: "{python_cmd(ready.format(ignore=''), 'ready')}", name: polite}}
- executable: {{cmd: "{python_cmd(ready.format(ignore=ignore_int), 'ready')}", name: stubborn}}
- executable: {{cmd: "{python_cmd(ready.format(ignore=ignore_both), 'ready')}", name: deaf}}
- executable: {{cmd: "sleep 60 & echo ready; wait", name: parent, shell: true}}
""")
    runner = start_runner(path)
    lines: list[str] = []
    try:
        read_until(runner, lines, lambda: sum(line.endswith("] ready") for line in lines) == 4)
        start = time.monotonic()
        runner.send_signal(signal.SIGINT)
        rest, _ = runner.communicate(timeout=TIMEOUT_S)
    finally:
        runner.kill()
    output = "\n".join(lines) + "\n" + rest.decode()
    assert runner.returncode == 0, output
    assert time.monotonic() - start < 5.0
    assert "[launch] interrupted: sending SIGINT to polite, stubborn, deaf, parent" in output
    assert "[launch] timed out: sending SIGTERM to stubborn, deaf" in output
    assert "[launch] timed out: sending SIGKILL to deaf" in output
    assert "[launch] deaf exited with status 137" in output
    assert_no_orphans(started_pids(output))  # the shell's background sleep included


@pytest.mark.ros
def test_sim_node_runs_for_duration(tmp_path):
    path = write(tmp_path, """
launch:
- arg: {name: duration, default: "0"}
- node:
    pkg: kinesis_sim_node
    exec: sim_node
    name: sim
    param:
    - {name: clock, value: realtime}
    - {name: control_mode, value: direct}
""")
    _, env = private_ros_environment(range(1, 100))
    # 8 s: under `make test` the other test worker loads the machine, and the node's start took > 3 s beside it
    status, output, elapsed = run_launch(path, "duration:=8", env=env)
    assert status == 0, output
    assert "]: ready: legs (80 muscles), direct control, realtime clock at 30 Hz" in output
    assert all(line.startswith("[") for line in output.splitlines()), output
    assert "[launch] sim exited with status 0" in output
    assert 8.0 <= elapsed < 20.0
    assert_no_orphans(started_pids(output))


def test_children_die_with_a_killed_runner(tmp_path):
    path = write(tmp_path, f"""
launch:
- executable: {{cmd: "{python_cmd(SLEEPER, 'ready')}", name: orphan_candidate}}
""")
    runner = start_runner(path)
    lines: list[str] = []
    try:
        read_until(runner, lines, lambda: "[orphan_candidate] ready" in lines)
    finally:
        runner.kill()  # SIGKILL: the runner cannot clean up; PR_SET_PDEATHSIG does
        runner.communicate(timeout=TIMEOUT_S)
    assert_no_orphans(started_pids("\n".join(lines)))



@pytest.mark.ros
@pytest.mark.slow
def test_recorded_launch_run_holds_the_commands_and_the_text_feedback(tmp_path):
    """`kinesis launch text_to_motion record:=...`: the MCAP holds what the stack published, the muscle
    commands and the text node's answer included, each with its ROS 2 schema."""
    import json

    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import String

    from kinesis_msgs.msg import MuscleCommand

    path = tmp_path / "run.mcap"
    _, env = private_ros_environment(range(1, 100))
    status, output, _ = run_launch(launch_file.resolve_launch_file("text_to_motion"), "headless:=true", "duration:=20",
                                   f"record:={path}", "text:=walk forward slowly", "clock:=lockstep", env=env,
                                   timeout=120.0)
    assert status == 0, output
    with open(path, "rb") as stream:
        reader = make_reader(stream)
        counts, schemas = mcap_channels(reader)
        commands = [deserialize_message(m.data, MuscleCommand)
                    for _, _, m in reader.iter_messages(topics=["/kinesis/muscle_command"])]
        feedback = [json.loads(deserialize_message(m.data, String).data)
                    for _, _, m in reader.iter_messages(topics=["/text_feedback"])]
    assert counts["/kinesis/muscle_command"] >= 10 and counts["/kinesis/sim_state"] >= 10, (counts, output)
    assert schemas["/kinesis/muscle_command"] == ("kinesis_msgs/msg/MuscleCommand", "ros2msg", "cdr")
    assert schemas["/text_feedback"] == ("std_msgs/msg/String", "ros2msg", "cdr")
    assert {c.embodiment for c in commands} == {"legs"} and all(len(c.values) == 80 for c in commands)
    assert feedback[-1]["prompt"] == "walk forward slowly" and feedback[-1]["ok"], feedback
