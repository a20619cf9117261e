"""Read ROS 2 YAML launch files into the processes to start (``kinesis.launch`` runs them).

Supported part of the ROS 2 YAML launch format (a file is ``launch:`` followed by a list of
one-key actions; unknown actions and attributes are errors)::

    - arg: {name, default, description, choices}       # set from the command line as name:=value
    - let: {name, value}                               # a variable for $(var name)
    - set_env: {name, value}                           # environment of the processes started after it
    - include: {file, arg: [{name, value}]}            # another YAML launch file; its variables are scoped
    - node: {pkg, exec, name, namespace, param, remap, args, ros_args, env, cwd, output, on_exit}
    - node_container: {pkg, exec, name, namespace, args, ros_args, env, cwd, output, on_exit, composable_node}
    - load_composable_node: {target, composable_node}    # into a node_container started before it
    - executable: {cmd, name, args, env, cwd, shell, output, on_exit}

``composable_node`` items are ``{pkg, plugin, name, namespace, param, remap}``; ``plugin`` is the node
class as ``module.Class`` inside ``pkg`` (``kinesis_sim_node.sim_node.SimNode``). A container is one
process (``kinesis_sim_node.component_container``) running all the nodes composed into it: the ones it
lists and the ones later ``load_composable_node`` actions add (``target``: its name, with namespace), all
given on its command line (launch_ros loads them through the container's ``load_node`` service instead).

Every action takes ``if``/``unless`` (true/false/1/0). ``param`` items are ``{name, value}``
(passed as ``-p name:=value``; string values are typed as YAML, as ROS does) or ``{from: file}``
(``--params-file``); ``remap`` items ``{from, to}`` (``-r from:=to``); ``on_exit: shutdown``
stops the launch when that process exits. ``output`` is accepted; output always goes to the
screen, each line prefixed with ``[name]``. Substitutions: ``$(var n)``, ``$(env N [default])``,
``$(optenv N [default])``, ``$(find-pkg-share pkg)``, ``$(find-pkg-prefix pkg)`` (ament index of
``AMENT_PREFIX_PATH``, this environment's prefix by default), ``$(dirname)``, ``$(filename)``,
``$(not x)``, ``$(and a b)``, ``$(or a b)``, ``$(equals a b)``, ``$(not-equals a b)``.

Executables: node ``pkg``/``exec`` runs ``python -P -m <pkg>.<exec>`` (the console script a ROS
install would call ``lib/<pkg>/<exec>``; ``-P`` keeps the working directory off ``sys.path``).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

LAUNCH_DIR = Path(__file__).resolve().parent.parent / "launch"
LAUNCH_SUFFIX = ".launch.yaml"
_SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else ()  # keep the working directory off sys.path

_ACTION_KEYS = {
    "arg": {"name", "default", "description", "choices"},
    "let": {"name", "value"},
    "set_env": {"name", "value"},
    "include": {"file", "arg"},
    "node": {"pkg", "exec", "name", "namespace", "param", "remap", "args", "ros_args", "env", "cwd", "output", "on_exit"},
    "node_container": {"pkg", "exec", "name", "namespace", "args", "ros_args", "env", "cwd", "output", "on_exit",
                       "composable_node"},
    "load_composable_node": {"target", "composable_node"},
    "executable": {"cmd", "name", "args", "env", "cwd", "shell", "output", "on_exit"},
}
_COMPOSABLE_NODE_KEYS = {"pkg", "plugin", "name", "namespace", "param", "remap"}
_LOAD = "--load"  # kinesis_sim_node.component_container: --load PLUGIN [node ROS arguments] ...


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str | None
    description: str
    value: str


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start: ``cmd`` with ``env`` (the full environment) in ``cwd``."""

    name: str
    cmd: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None = None
    shutdown_on_exit: bool = False


@dataclass(frozen=True)
class LaunchPlan:
    path: Path
    arguments: dict[str, LaunchArgument]
    processes: tuple[ProcessSpec, ...]

    @property
    def duration(self) -> float:
        """Seconds to run (the ``duration`` argument; 0 = until stopped)."""
        argument = self.arguments.get("duration")
        try:
            return float(argument.value) if argument and argument.value else 0.0
        except ValueError:
            raise ValueError(f"launch argument duration must be a number of seconds, got {argument.value!r}") from None


# --- loading ----------------------------------------------------------------------------------


def resolve_launch_file(name_or_path: str | Path) -> Path:
    """A launch file path, or the name of one in the repository's ``launch/`` folder."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    for candidate in (LAUNCH_DIR / f"{name_or_path}{LAUNCH_SUFFIX}", LAUNCH_DIR / str(name_or_path)):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no launch file {str(name_or_path)!r}: not a file, and not one of {available_launch_files()} in {LAUNCH_DIR}")


def available_launch_files() -> list[str]:
    return sorted(p.name.removesuffix(LAUNCH_SUFFIX) for p in LAUNCH_DIR.glob(f"*{LAUNCH_SUFFIX}"))


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    """``["a:=1", "b:=x"]`` -> ``{"a": "1", "b": "x"}``."""
    result = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"launch arguments are written name:=value, got {item!r}")
        result[name] = value
    return result


def load_launch(path: str | Path, arguments: dict[str, str] | None = None) -> LaunchPlan:
    """Parse a YAML launch file with command-line ``arguments`` into the processes to start.

    Raises:
        ValueError: malformed file, unknown action or attribute, unknown or missing argument,
            failed substitution.
    """
    path = Path(path).resolve()
    arguments = dict(arguments or {})
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    env["PYTHONUNBUFFERED"] = "1"
    loader = _Loader(env)
    declared = loader.load(path, dict(arguments))
    unknown = sorted(set(arguments) - set(loader.declared_names))
    if unknown:
        raise ValueError(f"{path.name}: unknown launch argument(s) {unknown}; declared: {sorted(declared)}")
    return LaunchPlan(path=path, arguments=declared, processes=tuple(_unique_names(loader.processes)))


@dataclass
class _Scope:
    path: Path
    variables: dict[str, str]


@dataclass
class _Loader:
    env: dict[str, str]
    processes: list[ProcessSpec] = field(default_factory=list)
    declared_names: set[str] = field(default_factory=set)
    containers: dict[str, int] = field(default_factory=dict)  # "namespace/name" -> index in processes

    def load(self, path: Path, variables: dict[str, str]) -> dict[str, LaunchArgument]:
        if not path.is_file():
            raise ValueError(f"launch file not found: {path}")
        with path.open() as stream:
            document = yaml.safe_load(stream)
        if not isinstance(document, dict) or not isinstance(document.get("launch"), list):
            raise ValueError(f"{path}: a YAML launch file is a mapping with a 'launch:' list")
        scope, declared = _Scope(path, variables), {}
        for entry in document["launch"]:
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError(f"{path}: each launch entry is a mapping with one action, got {entry!r}")
            (action, attrs), = entry.items()
            if action not in _ACTION_KEYS:
                raise ValueError(f"{path}: unsupported launch action {action!r} (supported: {sorted(_ACTION_KEYS)})")
            attrs = dict(attrs or {})
            if not _condition(attrs, scope):
                continue
            unknown = set(attrs) - _ACTION_KEYS[action]
            if unknown:
                raise ValueError(f"{path}: {action}: unknown attribute(s) {sorted(unknown)} (allowed: {sorted(_ACTION_KEYS[action])})")
            getattr(self, f"_{action}")(attrs, scope, declared)
        return declared

    def _arg(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        name = _required(attrs, "name", scope)
        default = None if attrs.get("default") is None else _text(attrs["default"], scope)
        if name not in scope.variables:
            if default is None:
                raise ValueError(f"{scope.path.name}: launch argument {name!r} is required (pass {name}:=VALUE)")
            scope.variables[name] = default
        choices = attrs.get("choices")
        if choices is not None and scope.variables[name] not in [_text(c, scope) for c in choices]:
            raise ValueError(f"{scope.path.name}: launch argument {name}={scope.variables[name]!r} is not one of {choices}")
        self.declared_names.add(name)
        declared[name] = LaunchArgument(name, default, str(attrs.get("description", "")), scope.variables[name])

    def _let(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        scope.variables[_required(attrs, "name", scope)] = _text(attrs.get("value", ""), scope)

    def _set_env(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        self.env[_required(attrs, "name", scope)] = _text(attrs.get("value", ""), scope)

    def _include(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        file = Path(_required(attrs, "file", scope))
        variables = dict(scope.variables)
        variables.update({_required(a, "name", scope): _text(a.get("value", ""), scope) for a in attrs.get("arg") or []})
        self.load(file if file.is_absolute() else scope.path.parent / file, variables)

    def _node(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        package, executable = _required(attrs, "pkg", scope), _required(attrs, "exec", scope)
        name = _text(attrs["name"], scope) if "name" in attrs else None
        ros_args = [*_node_ros_args(attrs, scope), *shlex.split(_text(attrs.get("ros_args", ""), scope))]
        cmd = [*_module_command(package, executable, attrs, scope), *(["--ros-args", *ros_args] if ros_args else [])]
        self._add(name or executable, cmd, attrs, scope)

    def _node_container(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        package, executable = _required(attrs, "pkg", scope), _required(attrs, "exec", scope)
        name = _required(attrs, "name", scope)
        namespace = _text(attrs.get("namespace", ""), scope).strip("/")
        ros_args = _node_ros_args({"name": name, "namespace": namespace}, scope) + shlex.split(_text(attrs.get("ros_args", ""), scope))
        cmd = [*_module_command(package, executable, attrs, scope), *_composable_nodes(attrs, scope), "--ros-args", *ros_args]
        self.containers[f"{namespace}/{name}".lstrip("/")] = len(self.processes)
        self._add(name, cmd, attrs, scope)

    def _load_composable_node(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        target = _required(attrs, "target", scope).strip("/")
        if target not in self.containers:
            raise ValueError(f"{scope.path.name}: load_composable_node: no node_container {target!r} before it"
                             f" (containers: {sorted(self.containers)})")
        index = self.containers[target]
        cmd = list(self.processes[index].cmd)
        end = cmd.index("--ros-args")
        cmd[end:end] = _composable_nodes(attrs, scope)
        self.processes[index] = replace(self.processes[index], cmd=tuple(cmd))

    def _executable(self, attrs: dict, scope: _Scope, declared: dict) -> None:
        command = _required(attrs, "cmd", scope) + " " + _text(attrs.get("args", ""), scope)
        shell = _bool(_text(attrs.get("shell", "false"), scope), "shell")
        cmd = ["/bin/sh", "-c", command] if shell else shlex.split(command)
        name = _text(attrs["name"], scope) if "name" in attrs else Path(shlex.split(command)[0]).name
        self._add(name, cmd, attrs, scope)

    def _add(self, name: str, cmd: list[str], attrs: dict, scope: _Scope) -> None:
        on_exit = _text(attrs.get("on_exit", ""), scope)
        if on_exit not in ("", "shutdown"):
            raise ValueError(f"{scope.path.name}: {name}: on_exit must be 'shutdown', got {on_exit!r}")
        env = dict(self.env)
        env.update({_required(e, "name", scope): _text(e.get("value", ""), scope) for e in attrs.get("env") or []})
        cwd = _text(attrs["cwd"], scope) if "cwd" in attrs else None
        self.processes.append(ProcessSpec(name=name, cmd=tuple(cmd), env=env, cwd=cwd, shutdown_on_exit=on_exit == "shutdown"))


def _module_command(package: str, executable: str, attrs: dict, scope: _Scope) -> list[str]:
    return [sys.executable, *_SAFE_PATH, "-m", f"{package}.{executable}", *shlex.split(_text(attrs.get("args", ""), scope))]


def _node_ros_args(attrs: dict, scope: _Scope) -> list[str]:
    """The ROS arguments of a node's ``name``, ``namespace``, ``param`` and ``remap`` attributes."""
    ros_args = ["-r", f"__node:={_text(attrs['name'], scope)}"] if "name" in attrs else []
    if attrs.get("namespace"):
        ros_args += ["-r", f"__ns:=/{_text(attrs['namespace'], scope).lstrip('/')}"]
    for param in attrs.get("param") or []:
        if "from" in param:
            ros_args += ["--params-file", _text(param["from"], scope)]
        else:
            ros_args += ["-p", f"{_required(param, 'name', scope)}:={_yaml_literal(_typed(param.get('value', ''), scope))}"]
    for remap in attrs.get("remap") or []:
        ros_args += ["-r", f"{_required(remap, 'from', scope)}:={_required(remap, 'to', scope)}"]
    return ros_args


def _composable_nodes(attrs: dict, scope: _Scope) -> list[str]:
    """The container arguments (``--load PLUGIN [node ROS arguments]`` each) of ``attrs['composable_node']``."""
    nodes = attrs.get("composable_node") or []
    if not isinstance(nodes, list):
        raise ValueError(f"{scope.path.name}: composable_node must be a list of nodes, got {nodes!r}")
    args = []
    for node in nodes:
        unknown = set(node) - _COMPOSABLE_NODE_KEYS if isinstance(node, dict) else {"(not a mapping)"}
        if unknown:
            raise ValueError(f"{scope.path.name}: composable_node: unknown attribute(s) {sorted(unknown)}"
                             f" (allowed: {sorted(_COMPOSABLE_NODE_KEYS)})")
        package, plugin = _required(node, "pkg", scope), _required(node, "plugin", scope)
        if not plugin.startswith(f"{package}."):
            raise ValueError(f"{scope.path.name}: composable_node plugin {plugin!r} is not a class of package {package!r}"
                             f" (write module.Class, e.g. {package}.module.Class)")
        args += [_LOAD, plugin, *_node_ros_args(node, scope)]
    return args


def _unique_names(processes: list[ProcessSpec]) -> list[ProcessSpec]:
    seen: dict[str, int] = {}
    result = []
    for spec in processes:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        name = spec.name if seen[spec.name] == 1 else f"{spec.name}-{seen[spec.name]}"
        result.append(ProcessSpec(name, spec.cmd, spec.env, spec.cwd, spec.shutdown_on_exit))
    return result


def _required(attrs: dict, key: str, scope: _Scope) -> str:
    if key not in attrs or attrs[key] is None:
        raise ValueError(f"{scope.path.name}: attribute {key!r} is required in {attrs!r}")
    return _text(attrs[key], scope)


def _condition(attrs: dict, scope: _Scope) -> bool:
    keep = _bool(_text(attrs.pop("if"), scope), "if") if "if" in attrs else True
    return keep and not (_bool(_text(attrs.pop("unless"), scope), "unless") if "unless" in attrs else False)


def _bool(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"{what} must be true/false/1/0, got {value!r}")


def _typed(value: Any, scope: _Scope) -> Any:
    """A parameter value: strings are substituted, then read as YAML (``"3"`` -> 3, ``"true"`` -> True)."""
    if isinstance(value, list):
        return [_typed(v, scope) for v in value]
    if not isinstance(value, str):
        return value
    text = substitute(value, scope)
    try:
        typed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return typed if isinstance(typed, (bool, int, float, list)) else text


def _yaml_literal(value: Any) -> str:
    """The YAML text rcl reads back as ``value`` (``''`` for the empty string)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix("\n...").strip()


def _text(value: Any, scope: _Scope) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return substitute(str(value), scope)


# --- substitutions ----------------------------------------------------------------------------


def substitute(text: str, scope: _Scope) -> str:
    """``text`` with every ``$(...)`` replaced (nested substitutions allowed)."""
    value, _ = _expand(text, 0, scope, inside=False)
    return value


def _expand(text: str, i: int, scope: _Scope, inside: bool) -> tuple[str, int]:
    out = []
    while i < len(text):
        if text.startswith("$(", i):
            value, i = _substitution(text, i + 2, scope)
            out.append(value)
        elif inside and (text[i].isspace() or text[i] == ")"):
            break
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i


def _substitution(text: str, i: int, scope: _Scope) -> tuple[str, int]:
    start = i
    while i < len(text) and not text[i].isspace() and text[i] != ")":
        i += 1
    name, args = text[start:i], []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            raise ValueError(f"{scope.path.name}: unclosed substitution in {text!r}")
        if text[i] == ")":
            return _evaluate(name, args, scope), i + 1
        if text[i] in "'\"":
            end = text.find(text[i], i + 1)
            if end < 0:
                raise ValueError(f"{scope.path.name}: unclosed quote in {text!r}")
            args.append(substitute(text[i + 1:end], scope))
            i = end + 1
        else:
            arg, i = _expand(text, i, scope, inside=True)
            args.append(arg)


def _evaluate(name: str, args: list[str], scope: _Scope) -> str:
    def arity(low: int, high: int) -> None:
        if not low <= len(args) <= high:
            raise ValueError(f"{scope.path.name}: $({name}) takes {low}..{high} arguments, got {args}")

    if name == "var":
        arity(1, 1)
        if args[0] not in scope.variables:
            raise ValueError(f"{scope.path.name}: $(var {args[0]}): no launch argument or variable of that name")
        return scope.variables[args[0]]
    if name in ("env", "optenv"):
        arity(1, 2)
        if args[0] in os.environ:
            return os.environ[args[0]]
        if len(args) == 2 or name == "optenv":
            return args[1] if len(args) == 2 else ""
        raise ValueError(f"{scope.path.name}: $(env {args[0]}): environment variable not set and no default given")
    if name in ("find-pkg-share", "find-pkg-prefix"):
        arity(1, 1)
        return _package_path(args[0], share=name == "find-pkg-share")
    if name in ("dirname", "filename"):
        arity(0, 0)
        return str(scope.path.parent if name == "dirname" else scope.path)
    if name == "not":
        arity(1, 1)
        return _bool_text(not _bool(args[0], "$(not)"))
    if name in ("and", "or"):
        arity(2, 2)
        a, b = (_bool(arg, f"$({name})") for arg in args)
        return _bool_text(a and b if name == "and" else a or b)
    if name in ("equals", "not-equals"):
        arity(2, 2)
        return _bool_text((args[0] == args[1]) == (name == "equals"))
    raise ValueError(f"{scope.path.name}: unsupported substitution $({name} ...)")


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _package_path(package: str, share: bool) -> str:
    os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory

    try:
        return get_package_share_directory(package) if share else get_package_prefix(package)
    except PackageNotFoundError:
        raise ValueError(f"package {package!r} not found in the ament index (AMENT_PREFIX_PATH={os.environ['AMENT_PREFIX_PATH']})") from None
