"""`kinesis view`: watch a policy in MuJoCo's viewer window, the reference it tracks drawn as ghost spheres.

The policy acts on the imitation env in evaluation mode (every motion from its first frame, the evaluation
termination distance), one control step per 1/30 s; when a motion ends or fails the next one starts. With
--task reach|directional|kick it runs seeded goals of the task env instead (goal i of --seed, as
`kinesis eval --task`), the task's reference and goal drawn. Without --checkpoint the policy is the default
of `kinesis eval` (the same resolution): the bundled policy of the embodiment (the trained walker for legs;
--task kick: the hold-pose fallback, nothing is bundled for legs_back). --checkpoint hold-pose shows the
untrained fallback. --checkpoint kinesis:NAME takes an official checkpoint fetched by `kinesis assets fetch`
(those expect --embodiment kinesis-v1).

Keys: Right arrow or N: next motion (goal); Left arrow or P: previous; Backspace or R: restart it;
Space: pause. (N, P and R also toggle MuJoCo's Island, Contact Split and Reflection flags.) Mouse as in
MuJoCo's viewer: drag to rotate, right-drag to pan, scroll to zoom; Tab shows its option panels.

The window needs a display. Without one `kinesis view` exits with status 2 and says so; headless, run it
under Xvfb (`xvfb-run -a kinesis view --screenshot view.png`). --steps N runs N control steps and exits;
--screenshot FILE then renders the viewer's scene (its camera, the ghosts) offscreen into a PNG.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
import warnings
from pathlib import Path

SCREENSHOT_STEPS = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("view", help="watch a policy in MuJoCo's viewer, the reference as ghost spheres",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None,
                        help="model.pth, kinesis:NAME, or hold-pose / zero-action for a fallback controller "
                             "(default: the bundled policy of the embodiment, as `kinesis eval`)")
    parser.add_argument("--weights", choices=("float32", "float16"), default="float32",
                        help="--checkpoint: weight storage of the mean action (default float32)")
    parser.add_argument("--motions", default="default:test", help="LIBRARY[:SPLIT] to play (default default:test)")
    parser.add_argument("--motion", default=None, help="start with this motion of the library")
    parser.add_argument("--task", default=None, metavar="TASK",
                        help="a downstream task instead: reach, directional, kick")
    parser.add_argument("--goals", type=int, default=10, help="--task: number of seeded goals to cycle (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes and of the task goals (default 0)")
    parser.add_argument("--embodiment", default=None,
                        help="legs, legs_abs, legs_back, kinesis-v1 or an MJCF path "
                             "(default legs; --task kick: legs_back)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"run this many control steps, then exit (default: until the window is closed; "
                             f"{SCREENSHOT_STEPS} with --screenshot)")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="after --steps, write the view (offscreen render of the same scene) to this PNG and exit")
    parser.add_argument("--size", default="640x480", help="--screenshot: WIDTHxHEIGHT in pixels (default 640x480)")
    parser.add_argument("--no-realtime", action="store_true", help="step as fast as possible instead of at 30 Hz")
    parser.set_defaults(func=run, workers=1)


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    width, sep, height = text.lower().partition("x")
    valid = sep and width.isdigit() and height.isdigit() and 16 <= int(width) <= 8192 and 16 <= int(height) <= 8192
    if not valid:
        raise ValueError(f"--size {text}: expected WIDTHxHEIGHT, each 16 to 8192 (e.g. 640x480)")
    return int(width), int(height)


def display_problem() -> str | None:
    """Why MuJoCo's viewer window cannot open here, or None."""
    hint = ("run it in a desktop session (or `ssh -X`), or headless under Xvfb: "
            "`xvfb-run -a kinesis view --screenshot view.png`; `kinesis demo --sim-only` renders a video without "
            "a display")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return f"no display: DISPLAY is not set, so the viewer window cannot open; {hint}"
    try:
        import glfw
    except Exception as error:  # the glfw wheel could not load its library (libX11 / libGL missing)
        return f"GLFW cannot be loaded ({error}); install the Debian packages libglfw3 or libx11-6 and libgl1; {hint}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, window, errors = False, None, []
        try:
            ok = glfw.init()
            if ok:  # a hidden window with an OpenGL context, as the viewer's (its thread hangs if that fails)
                glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
                window = glfw.create_window(16, 16, "kinesis view probe", None, None)
                if window:
                    glfw.destroy_window(window)
                glfw.default_window_hints()
        except Exception as error:  # glfw.ERROR_REPORTING = "raise"
            errors.append(str(error))
    if not ok or not window:
        detail = "; ".join(errors + [str(w.message) for w in caught]) or "glfwInit or glfwCreateWindow failed"
        display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        return f"cannot open an OpenGL window on the display {display!r} ({detail}); {hint}"
    return None


def build_session(args: argparse.Namespace):
    """The ViewSession of the arguments, with the default policy of `kinesis eval`."""
    from kinesis_tasks.evaluation import evaluation_config
    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_tasks.motions import load_library
    from kinesis_tasks.task_env import check_task, default_embodiment
    from kinesis_tasks.view_session import ViewSession

    from kinesis.eval_cli import _policy_factory
    from kinesis_tasks.motions import parse_library_spec

    factory = _policy_factory(args)  # the resolution `kinesis eval` uses: checkpoint, kinesis:NAME or its default
    if args.task is not None:
        task = check_task(args.task)
        config = ImitationConfig.default(embodiment=args.embodiment or default_embodiment(task))
        return ViewSession.for_task(task, config, factory, goals=args.goals, seed=args.seed), factory
    library, split = parse_library_spec(args.motions)
    motions = load_library(library, split=split)
    if not motions:
        raise ValueError(f"--motions {args.motions}: no motions")
    config = evaluation_config(embodiment=args.embodiment or "legs")
    return ViewSession.for_motions(config, motions, factory, motion=args.motion, seed=args.seed), factory


def run(args: argparse.Namespace) -> int:
    if args.screenshot is not None:
        os.environ.setdefault("MUJOCO_GL", "osmesa")  # the offscreen renderer must not share GLFW with the viewer
        if args.steps is None:
            args.steps = SCREENSHOT_STEPS
        if args.screenshot.suffix.lower() != ".png":
            raise ValueError(f"--screenshot {args.screenshot}: the file name must end in .png")
    size = parse_size(args.size)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    problem = display_problem()
    if problem:
        print(f"kinesis view: {problem}", file=sys.stderr)
        return 2
    session, factory = build_session(args)
    if args.screenshot is not None:
        vis = session.model.vis.global_
        vis.offwidth, vis.offheight = max(vis.offwidth, size[0]), max(vis.offheight, size[1])
    print(f"kinesis view: {getattr(factory, 'description', 'policy')}; embodiment "
          f"{args.embodiment or ('legs' if args.task is None else 'task default')}; "
          f"{len(session.items)} {'goals' if session.is_task else 'motions'}")
    print("keys: Right/N next, Left/P previous, Backspace/R restart, Space pause; close the window to quit")
    return _view(session, args, size)


def _view(session, args: argparse.Namespace, size: tuple[int, int]) -> int:
    import mujoco
    import mujoco.viewer

    keys: queue.SimpleQueue[int] = queue.SimpleQueue()
    before = set(threading.enumerate())
    try:
        viewer = mujoco.viewer.launch_passive(session.model, session.data, key_callback=keys.put,
                                              show_left_ui=False, show_right_ui=False)
    except RuntimeError as error:  # e.g. macOS outside mjpython
        print(f"kinesis view: the viewer cannot start here ({error})", file=sys.stderr)
        return 2
    viewer_threads = [t for t in threading.enumerate() if t not in before]
    try:
        with viewer.lock():
            _track_root(viewer.cam, session.model)
        steps, period, last_text = 0, session.env.dt, ""
        deadline = time.perf_counter()
        while viewer.is_running():
            while not keys.empty():
                if session.handle_key(keys.get()):
                    print(session.status())
            with viewer.lock():
                steps += session.step()
                viewer.user_scn.ngeom = 0
                session.ghosts().draw(viewer.user_scn)
            viewer.sync()
            text = session.status()
            if text != last_text and (steps % 10 == 0 or session.paused):
                _overlay(viewer, text)
                last_text = text
            if args.steps is not None and steps >= args.steps:
                break
            if not args.no_realtime:
                deadline += period
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.25:  # far behind (slow rendering): do not try to catch up
                    deadline = time.perf_counter()
        if args.screenshot is not None:
            if not viewer.is_running():
                raise ValueError("the viewer window was closed before the screenshot")
            path = screenshot(viewer, session, args.screenshot, size)
            print(f"screenshot: {path} ({size[0]}x{size[1]}) after {steps} control steps; {session.status()}")
    finally:
        viewer.close()
        for thread in viewer_threads:  # let the viewer tear down its window before the interpreter exits
            thread.join(timeout=10)
    return 0


def _track_root(camera, model) -> None:
    """A camera that follows the root body, from the front left, slightly above."""
    import mujoco

    root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "root")
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = root if root >= 0 else 1
    camera.distance, camera.azimuth, camera.elevation = 3.2, 135.0, -15.0


def _overlay(viewer, text: str) -> None:
    import mujoco

    try:
        viewer.set_texts((mujoco.mjtFontScale.mjFONTSCALE_150, mujoco.mjtGridPos.mjGRID_TOPLEFT, text, ""))
    except (AttributeError, TypeError):  # older MuJoCo without overlay texts in the passive viewer
        pass


def screenshot(viewer, session, path: Path, size: tuple[int, int]) -> Path:
    """Render the viewer's scene (its camera and options, the ghosts) offscreen and write a PNG."""
    import imageio.v3 as iio
    import mujoco

    width, height = size
    renderer = mujoco.Renderer(session.model, height=height, width=width)
    try:
        with viewer.lock():
            renderer.update_scene(session.data, camera=viewer.cam, scene_option=viewer.opt)
            session.ghosts().draw(renderer.scene)
        pixels = renderer.render()
    finally:
        renderer.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels)
    return path
