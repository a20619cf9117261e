"""`kinesis assets fetch` against a local server in the Hugging Face Hub's URL layout, and the name resolution
(``--embodiment kinesis-v1``, ``--checkpoint kinesis:NAME``) of the fetched files.

The server (http.server on 127.0.0.1, in a thread) answers what the Hub answers for file downloads: HEAD and
GET on ``/[datasets/]{repo}/resolve/{revision}/{path}`` with ETag (sha256 for LFS files, git blob sha1 for
small ones, as ``X-Linked-Etag`` behind a redirect to a CDN URL for the checkpoints), ``X-Repo-Commit``,
byte ranges (206), ``X-Error-Code: EntryNotFound`` 404s, and the tree API for the dataset's file listing.
It can drop the connection in the middle of a file once, or serve other bytes than it announces.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from kinesis_tasks import assets as kassets
from kinesis_tasks.asset_fetch import (
    MANIFEST_NAME,
    ChecksumMismatchError,
    FetchError,
    InterruptedDownloadError,
    OfflineError,
    fetch,
    read_manifest,
    verify,
)
from kinesis_tasks.assets import AssetsMissingError, load_assets_config, resolve_checkpoint

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(__file__).parent / "data" / "conformance"
V1_DIR = CONFORMANCE / "kinesis_v1_model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MOE = "amathislab/kinesis-moe-imitation"
REACH = "amathislab/kinesis-target-goal-reach"
DATASET = "datasets/amathislab/kinesis-assets"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Files by repo key ('owner/name' or 'datasets/owner/name') and path; a request log."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, bytes]] = {
            MOE: {"model.pth": (CONFORMANCE / "policy_moe.pt").read_bytes(),
                  "expert_0/model.pth": (CONFORMANCE / "policy_lattice.pt").read_bytes()},
            REACH: {"model.pth": (CONFORMANCE / "policy_lattice.pt").read_bytes()},
            DATASET: {f"xml/{p.relative_to(V1_DIR).as_posix()}": p.read_bytes() for p in sorted(V1_DIR.rglob("*"))
                      if p.is_file()} | {"initial_pose/initial_pose_test.pkl": b"not needed"},
        }
        self.drop_once: set[str] = set()     # "repo/path": the first GET sends half the body, then closes
        self.serve_instead: dict[str, bytes] = {}  # "repo/path": bytes served in place of the announced file
        self.log: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()

    def lookup(self, url_path: str) -> tuple[str, str, str] | None:
        """(repo key, path, revision) of a resolve URL."""
        parts = unquote(urlsplit(url_path).path).lstrip("/").split("/")
        if parts[0] == "datasets":
            key, rest = "/".join(parts[:3]), parts[3:]
        else:
            key, rest = "/".join(parts[:2]), parts[2:]
        if len(rest) < 3 or rest[0] != "resolve":
            return None
        return key, "/".join(rest[2:]), rest[1]


def make_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def _not_found(self, code: str) -> None:
            self._send(404, {"X-Error-Code": code, "Content-Length": "0", "X-Repo-Commit": COMMIT})

        def _meta(self, key: str, path: str, data: bytes) -> dict[str, str]:
            lfs = path.endswith(".pth")
            etag = hashlib.sha256(data).hexdigest() if lfs else git_sha1(data)
            return {"ETag": f'"{etag}"', "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}

        def do_HEAD(self) -> None:
            self.handle_file()

        def do_GET(self) -> None:
            if self.path.startswith("/api/"):
                return self.handle_tree()
            if self.path.startswith("/cdn/"):
                key, _, path = self.path[len("/cdn/"):].partition("::")
                return self.serve_body(key, path)
            return self.handle_file()

        def handle_tree(self) -> None:
            parts = urlsplit(self.path).path.split("/")  # /api/datasets/owner/name/tree/rev
            key = "datasets/" + "/".join(parts[3:5])
            with hub.lock:
                hub.log.append(("GET", self.path, None))
            if key not in hub.files:
                return self._send(401, {"X-Error-Code": "RepoNotFound", "Content-Length": "0"})
            items = [{"type": "directory", "path": "xml"}] + [
                {"type": "file", "path": p, "size": len(d), "oid": git_sha1(d)} for p, d in hub.files[key].items()]
            body = json.dumps(items).encode()
            self._send(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)

        def handle_file(self) -> None:
            found = hub.lookup(self.path)
            with hub.lock:
                hub.log.append((self.command, self.path, self.headers.get("Range")))
            if found is None or found[0] not in hub.files:
                return self._send(401, {"X-Error-Code": "RepoNotFound", "Content-Length": "0"})
            key, path, revision = found
            if revision not in ("main", COMMIT):
                return self._send(404, {"X-Error-Code": "RevisionNotFound", "Content-Length": "0"})
            data = hub.files[key].get(path)
            if data is None:
                return self._not_found("EntryNotFound")
            meta = self._meta(key, path, data)
            if path.endswith(".pth"):  # LFS: the Hub redirects to a CDN and puts the metadata in X-Linked-*
                etag = meta.pop("ETag")
                host = self.headers["Host"]
                location = f"http://{host}/cdn/{key}::{path}"
                return self._send(302, {**meta, "Location": location, "X-Linked-Etag": etag,
                                        "X-Linked-Size": str(len(data)), "Content-Length": "0"})
            if self.command == "HEAD":
                return self._send(200, {**meta, "Content-Length": str(len(data))})
            return self.serve_body(key, path)

        def serve_body(self, key: str, path: str) -> None:
            with hub.lock:
                if self.path.startswith("/cdn/"):
                    hub.log.append((self.command, self.path, self.headers.get("Range")))
                name = f"{key}/{path}"
                drop = name in hub.drop_once
                hub.drop_once.discard(name)
            data = hub.serve_instead.get(name, hub.files[key][path])
            start = 0
            ranged = self.headers.get("Range")
            if ranged:
                start = int(ranged.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    return self._send(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
            body = data[start:]
            headers = {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
            if ranged:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self.send_response(206 if ranged else 200)
            for name_, value in headers.items():
                self.send_header(name_, value)
            self.end_headers()
            if drop:  # half the body, then the connection goes away
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """A fake Hub on 127.0.0.1; HF_ENDPOINT points at it, HF_HOME is private, offline mode is off."""
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture()
def dest(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "assets"
    monkeypatch.setenv("KINESIS_ASSETS", str(folder))
    return folder


def kinesis(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kinesis.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- names before anything is fetched -----------------------------------------------------------


def test_config_names_official_repositories():
    config = load_assets_config()
    assert {s.repo_id for s in config.sources.values()} >= {MOE, REACH, "amathislab/kinesis-assets"}
    assert config.embodiments["kinesis-v1"].endswith("myolegs.xml")
    assert {"moe", "target_reach", "expert_0"} <= set(config.checkpoints)


def test_default_folder_and_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("KINESIS_ASSETS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert kassets.assets_dir() == tmp_path / "xdg" / "kinesis" / "assets"
    monkeypatch.setenv("KINESIS_ASSETS", str(tmp_path / "env"))
    assert kassets.assets_dir() == tmp_path / "env"
    assert kassets.assets_dir(tmp_path / "flag") == tmp_path / "flag"


def test_missing_names_say_to_fetch(dest):
    with pytest.raises(AssetsMissingError, match=r"kinesis assets fetch"):
        resolve_checkpoint("kinesis:moe")
    from kinesis_tasks.embodiment import load_embodiment

    with pytest.raises(AssetsMissingError, match=r"embodiment 'kinesis-v1'.*kinesis assets fetch"):
        load_embodiment("kinesis-v1")
    with pytest.raises(ValueError, match=r"unknown official checkpoint 'kinesis:nope'.*expert_0"):
        resolve_checkpoint("kinesis:nope")
    assert resolve_checkpoint("runs/x/model.pth") == Path("runs/x/model.pth")  # paths pass through


def test_plain_paths_keep_their_errors(tmp_path):
    import kinesis_training as kt

    with pytest.raises(ValueError, match="does not exist"):  # load_checkpoint's own message, unchanged
        kt.load_checkpoint(tmp_path / "missing.pth")
    result = kinesis("checkpoint", "info", str(tmp_path / "nope.pth"), env=dict(os.environ))
    assert result.returncode == 2 and "checkpoint not found" in result.stderr


def test_cli_names_the_fetch_command_when_missing(dest):
    env = {**os.environ, "KINESIS_ASSETS": str(dest)}
    for args in (("eval", "--checkpoint", "kinesis:moe"), ("checkpoint", "info", "kinesis:expert_0")):
        result = kinesis(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert "kinesis assets fetch" in result.stderr and "Traceback" not in result.stderr


# --- fetching -------------------------------------------------------------------------------------


def test_fetch_downloads_verifies_and_resolves(hub, dest):
    import kinesis_training as kt
    from kinesis_tasks.embodiment import load_embodiment

    results = {r.relative: r for r in fetch(retries=0)}
    assert results["kinesis-moe-imitation/model.pth"].status == "downloaded"
    assert results["kinesis-moe-imitation/model.pth"].verified_by == "sha256 (Hub LFS)"
    assert results["kinesis-assets/xml/myolegs.xml"].verified_by == "git sha1 (Hub)"
    assert results["kinesis-moe-imitation/expert_1/model.pth"].status == "not published"  # optional, absent
    assert "kinesis-assets/initial_pose/initial_pose_test.pkl" not in results  # outside the include pattern
    for name, result in results.items():
        if result.status != "not published":
            assert (dest / name).is_file() and result.sha256 == hashlib.sha256((dest / name).read_bytes()).hexdigest()
    assert not any((dest / ".partial").rglob("*.part"))
    manifest = read_manifest(dest / MANIFEST_NAME)
    assert manifest["kinesis-moe-imitation/model.pth"] == hashlib.sha256(
        hub.files[MOE]["model.pth"]).hexdigest()
    assert all(state == "ok" for _, state in verify())

    # The names now resolve, through the call sites that load embodiments and checkpoints.
    model = load_embodiment("kinesis-v1")
    assert model.nu == 80 and model.opt.timestep == pytest.approx(1 / 150)
    policy = kt.load_policy("kinesis:moe", obs_dim=309, action_dim=80)
    assert policy.kind == "moe"
    assert kt.load_checkpoint("kinesis:expert_0").spec.kind == "lattice"
    assert kt.load_checkpoint("kinesis:target_reach").spec.kind == "lattice"

    # A second fetch only checks: HEAD requests, no downloads.
    hub.log.clear()
    again = fetch(retries=0)
    assert {r.status for r in again} == {"up to date", "not published"}
    assert not [entry for entry in hub.log if entry[0] == "GET" and "/api/" not in entry[1]]


def test_interrupted_download_resumes_with_a_range_request(hub, dest):
    hub.drop_once.add(f"{MOE}/model.pth")
    with pytest.raises(InterruptedDownloadError, match="run the same command again to resume"):
        fetch(repos=["kinesis-moe-imitation"], retries=0)
    part = dest / ".partial" / "kinesis-moe-imitation" / "model.pth.part"
    size = len(hub.files[MOE]["model.pth"])
    assert 0 < part.stat().st_size < size
    assert not (dest / "kinesis-moe-imitation" / "model.pth").exists()
    kept = part.stat().st_size

    hub.log.clear()
    results = {r.relative: r for r in fetch(repos=[MOE], retries=0)}  # by repo id this time
    assert results["kinesis-moe-imitation/model.pth"].status == "resumed"
    assert ("GET", f"/cdn/{MOE}::model.pth", f"bytes={kept}-") in hub.log
    final = dest / "kinesis-moe-imitation" / "model.pth"
    assert final.read_bytes() == hub.files[MOE]["model.pth"] and not part.exists()


def test_retries_resume_within_one_run(hub, dest):
    hub.drop_once.add(f"{REACH}/model.pth")
    results = fetch(repos=["kinesis-target-goal-reach"], retries=2)
    assert [r.status for r in results] == ["resumed"]
    assert (dest / "kinesis-target-goal-reach" / "model.pth").read_bytes() == hub.files[REACH]["model.pth"]


def test_checksum_mismatch_against_a_pin_deletes_the_download(hub, dest, tmp_path):
    pins = tmp_path / "pins.sha256"
    pins.write_text("# pinned\n" + "0" * 64 + "  kinesis-target-goal-reach/model.pth\n")
    with pytest.raises(ChecksumMismatchError, match=r"checksum mismatch \(sha256 \(pinned\)\): expected 0{64}"):
        fetch(repos=["kinesis-target-goal-reach"], manifest=pins, retries=0)
    assert not (dest / "kinesis-target-goal-reach" / "model.pth").exists()
    assert not list((dest / ".partial").rglob("*.part"))
    # The right pin passes.
    digest = hashlib.sha256(hub.files[REACH]["model.pth"]).hexdigest()
    pins.write_text(f"{digest}  kinesis-target-goal-reach/model.pth\n")
    assert fetch(repos=["kinesis-target-goal-reach"], manifest=pins, retries=0)[0].verified_by == "sha256 (pinned)"


def test_checksum_mismatch_against_the_hub_hash_keeps_the_good_file(hub, dest):
    fetch(repos=["kinesis-target-goal-reach"], retries=0)
    final = dest / "kinesis-target-goal-reach" / "model.pth"
    good = final.read_bytes()
    final.write_bytes(good[:-10] + b"corrupted!")  # a damaged local copy ...
    assert dict(verify())["kinesis-target-goal-reach/model.pth"] == "MISMATCH"
    hub.serve_instead[f"{REACH}/model.pth"] = good[:-10] + b"tampered!!"  # ... and a server sending other bytes
    with pytest.raises(ChecksumMismatchError, match=r"sha256 \(Hub LFS\)"):
        fetch(repos=["kinesis-target-goal-reach"], retries=0)
    assert final.read_bytes().endswith(b"corrupted!")  # untouched: the bad download was not installed
    del hub.serve_instead[f"{REACH}/model.pth"]
    assert fetch(repos=["kinesis-target-goal-reach"], retries=0)[0].status == "downloaded"
    assert final.read_bytes() == good


def test_missing_required_file_revision_and_unknown_repo(hub, dest):
    config = load_assets_config()
    broken = type(config)(sources={"x": type(config.sources["kinesis-moe-imitation"])(
        name="x", repo_id=MOE, files=("nope.pth",))}, embodiments={}, checkpoints={})
    with pytest.raises(FetchError, match=r"has no file 'nope.pth'"):
        fetch(broken, retries=0)
    with pytest.raises(FetchError, match="revision does not exist"):
        fetch(repos=["kinesis-moe-imitation"], revision="v9", retries=0)
    with pytest.raises(ValueError, match="--repo nope: not in the assets config"):
        fetch(repos=["nope"])


def test_offline_errors_say_what_to_do(dest, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE is set"):
        fetch()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(OfflineError, match=r"cannot reach .*kinesis assets fetch --dest DIR"):
        fetch(endpoint=closed_port_endpoint(), retries=0)


def test_cli_fetch_offline_and_online(hub, dest, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    result = kinesis("assets", "fetch", "--dest", str(dest), env={**env, "HF_ENDPOINT": closed_port_endpoint()})
    assert result.returncode == 1 and "cannot reach" in result.stderr and "Traceback" not in result.stderr
    result = kinesis("assets", "fetch", env={**env, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1 and "HF_HUB_OFFLINE is set" in result.stderr and "Traceback" not in result.stderr

    result = kinesis("assets", "fetch", "--repo", "kinesis-target-goal-reach", "--repo", MOE, env=env)
    assert result.returncode == 0, result.stderr
    assert "kinesis-moe-imitation/model.pth: downloaded" in result.stdout
    assert "expert_1/model.pth: not published" in result.stdout
    result = kinesis("assets", "list", env=env)
    assert "kinesis:moe" in result.stdout and "[fetched]" in result.stdout and "[not fetched]" in result.stdout
    result = kinesis("checkpoint", "info", "kinesis:moe", env=env)
    assert result.returncode == 0 and "moe" in result.stdout and "309" in result.stdout
    result = kinesis("assets", "verify", env=env)
    assert result.returncode == 0 and "files ok" in result.stdout
