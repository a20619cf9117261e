#!/usr/bin/env bash
# Set up everything KINESIS needs, from scratch and idempotently (a second run takes a second):
#   1. Debian packages: cmake, g++ (kinesis_msgs build), libosmesa6 (offscreen rendering), xvfb and X11/GL libraries (kinesis view)
#   2. .venv with the pinned Python dependencies (requirements*.txt) and this repo, editable
#   3. kinesis_msgs and composition_interfaces built and installed into .venv (scripts/build_msgs.sh)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
[[ "$VENV" = /* ]] || VENV="$PWD/$VENV"  # absolute: some steps run from other folders
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(cmake make g++ python3-dev libosmesa6)
# kinesis view: MuJoCo's viewer (the glfw wheel's libglfw loads X11 and GLX at run time) and Xvfb for headless use
APT_PACKAGES+=(xvfb xauth libx11-6 libgl1 libglx-mesa0 libgl1-mesa-dri libxrandr2 libxinerama1 libxcursor1 libxi6)
say() { echo "setup: $*"; }

# 1. System packages.
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages. Run:  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# 2. Virtual environment and Python packages (skipped when the requirement files are unchanged).
[[ -x "$VENV/bin/python" ]] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
stamp="$VENV/.kinesis-requirements.sha256"
want="$(cat "$REPO/requirements.txt" "$REPO/requirements-nodeps.txt" "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    say "installing Python packages (pinned; a few minutes on a fresh machine)"
    pip_install() {  # pip, its noise about this machine's local index folders filtered out; fails on error
        local log; log="$(mktemp)"
        if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
            grep -v "^WARNING: Location" "$log" >&2; rm -f "$log"
            echo "setup: error: pip install $* failed" >&2; exit 1
        fi
        grep -v -e "^WARNING: Location" -e "dependency conflicts" -e "^myosuite .* requires" "$log" || true; rm -f "$log"
    }
    # The ROS 2 runtime wheels, numpy, PyYAML and the interface build wheels first: the interface build (step 3) needs
    # only those, so it runs beside the rest of the install (pip keeps one core busy, the build both).
    pip_install $(grep -E '^(ros-kilted-|numpy==|PyYAML==)' "$REPO/requirements.txt")
    "$REPO/scripts/build_msgs.sh" --wheels-only "$VENV"
    build_log="$(mktemp)"
    "$REPO/scripts/build_msgs.sh" "$VENV" >"$build_log" 2>&1 & build=$!
    pip_install -r "$REPO/requirements.txt"
    pip_install --no-deps -r "$REPO/requirements-nodeps.txt"
    pip_install --no-deps -e "$REPO"
    wait "$build" || { cat "$build_log" >&2; echo "setup: error: the ROS 2 interface build failed" >&2; exit 1; }
    cat "$build_log"; rm -f "$build_log"
    interfaces_built=1
    # The ROS package folders (kinesis_sim_node/, ...) would shadow their inner Python packages as
    # namespace packages when Python runs from the repo root; putting the folders on sys.path fixes it.
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$REPO/training" "$REPO/kinesis_sim_node" "$REPO/kinesis_policy_node" > "$site/kinesis-ros-packages.pth"
    (cd / && "$VENV/bin/python" -c "import torch, mujoco, myo_sim, rclpy, kinesis_tasks, kinesis_training, kinesis_sim_node, kinesis_policy_node") \
        || { echo "setup: error: Python packages did not install (see the pip output above)" >&2; exit 1; }
    [[ -x "$VENV/bin/kinesis" ]] || { echo "setup: error: the kinesis command was not installed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi

# 3. ROS 2 interfaces (built beside step 2 when it ran; otherwise a check that they are up to date).
[[ -n "${interfaces_built:-}" ]] || "$REPO/scripts/build_msgs.sh" "$VENV"
(cd "$REPO" && "$VENV/bin/python" -c "import kinesis_sim_node.sim_node, kinesis_policy_node.policy_node") \
    || { echo "setup: error: the ROS nodes do not import (see above)" >&2; exit 1; }
say "ready: $VENV"
