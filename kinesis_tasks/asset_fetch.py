"""Download the official KINESIS files from the Hugging Face Hub: resumable, checksum-verified, clear offline errors.

For each file of ``config/assets.yaml`` (``kinesis_tasks.assets``) the Hub is asked with a HEAD request on
its ``/{repo}/resolve/{revision}/{path}`` URL (built by ``huggingface_hub.hf_hub_url``) for its size and
content hash (``X-Linked-Etag``/``ETag``: the sha256 of an LFS file, the git blob sha1 of a small file), as
``hf_hub_download`` does. The body is then streamed to ``DEST/.partial/SOURCE/PATH.part``; an interrupted
download keeps that file and the next attempt (in the same run, up to ``retries`` times, or a later run)
continues it with an HTTP ``Range`` request, as long as the remote hash is unchanged. A complete file is
checked against the pinned sha256 (config/assets.yaml ``sha256`` or a ``--manifest`` file) or else the
Hub's hash; only a file that passes is moved to ``DEST/SOURCE/PATH``, a mismatch deletes the download
and raises ``ChecksumMismatchError``. Finally ``DEST/MANIFEST.sha256`` lists the sha256 of every fetched file
(``sha256sum -c MANIFEST.sha256`` in DEST re-checks them).

The download is done here rather than by ``hf_hub_download``, whose partial files (huggingface_hub 2.x)
are per-process temporary files deleted on failure: it does not resume across runs. The Hugging Face
token, if the user has one (``HF_TOKEN`` or ``hf auth login``), is sent to the Hub (``huggingface_hub.get_token``).
``HF_ENDPOINT`` selects another Hub (a mirror); ``HF_HUB_OFFLINE=1`` makes every fetch a clear error.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from kinesis_tasks.assets import AssetsConfig, Source, assets_dir, load_assets_config

DEFAULT_ENDPOINT = "https://huggingface.co"
MANIFEST_NAME = "MANIFEST.sha256"
PARTIAL_DIR = ".partial"
CHUNK = 1 << 20
_TRUE = {"1", "on", "yes", "true"}

ProgressFn = Callable[[str, int, "int | None"], None]
"""(label, bytes done, total bytes or None)."""


class FetchError(RuntimeError):
    """A download failed; the message says why and what to do."""


class OfflineError(FetchError):
    """The Hub cannot be reached (no network, proxy, HF_HUB_OFFLINE)."""


class ChecksumMismatchError(FetchError):
    """A downloaded file does not have the expected checksum (the file was deleted)."""


class InterruptedDownloadError(FetchError):
    """The connection broke during a download; the partial file is kept for the next attempt."""


class EntryNotFoundError(FetchError):
    """The repository has no such file at this revision."""


@dataclass(frozen=True)
class Remote:
    """What the Hub says about one file."""

    url: str
    download_url: str
    etag: str | None
    size: int | None
    commit: str | None


@dataclass(frozen=True)
class FileResult:
    """Outcome of one file: status 'downloaded', 'resumed', 'up to date' or 'not published'."""

    source: str
    path: str
    status: str
    size: int = 0
    sha256: str | None = None
    verified_by: str = ""

    @property
    def relative(self) -> str:
        return f"{self.source}/{self.path}"


# --- checksums ------------------------------------------------------------------------------------


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, in one pass."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    sha1.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """``sha256sum`` lines ``HEX  SOURCE/PATH`` -> {SOURCE/PATH: hex}; blank lines and # comments skipped."""
    pins: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in digest) or not name:
            raise ValueError(f"{path}:{number}: expected 'SHA256  SOURCE/PATH', got {line!r}")
        pins[name] = digest.lower()
    return pins


def _expected(pin: str | None, remote: Remote) -> tuple[str, str | None]:
    """(how the file is verified, expected digest) from a pin or the Hub's etag."""
    if pin:
        return "sha256 (pinned)", pin
    etag = (remote.etag or "").lower()
    if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
        return "sha256 (Hub LFS)", etag
    if len(etag) == 40 and all(c in "0123456789abcdef" for c in etag):
        return "git sha1 (Hub)", etag
    return "size only", None


def _matches(how: str, expected: str | None, digests: tuple[str, str]) -> bool:
    return expected is None or expected == (digests[1] if how.startswith("git") else digests[0])


# --- HTTP -----------------------------------------------------------------------------------------


def hub_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _offline_hint(endpoint: str) -> str:
    return (f"check the internet connection (and HTTPS_PROXY if you use a proxy) and that {endpoint} is reachable; "
            "on a machine without internet, run `kinesis assets fetch --dest DIR` where there is internet and "
            "copy DIR here (then pass --dest DIR or set KINESIS_ASSETS=DIR)")


class _Hub:
    """A small client of the Hub's file endpoints."""

    def __init__(self, endpoint: str, timeout: float, token: str | None) -> None:
        import httpx2

        self.httpx = httpx2
        self.endpoint = endpoint
        self.token = token
        self.client = httpx2.Client(timeout=httpx2.Timeout(timeout, connect=min(timeout, 15.0)), follow_redirects=False,
                                    headers={"user-agent": "kinesis-ros (huggingface_hub file layout)"})

    def close(self) -> None:
        self.client.close()

    def headers(self, url: str, **extra: str) -> dict[str, str]:
        same_host = urlsplit(url).netloc == urlsplit(self.endpoint).netloc
        auth = {"authorization": f"Bearer {self.token}"} if self.token and same_host else {}
        return {**auth, **extra}

    def _request(self, method: str, url: str, **kwargs):
        try:
            return self.client.request(method, url, **kwargs)
        except (self.httpx.ConnectError, self.httpx.ConnectTimeout, self.httpx.ProxyError) as error:
            raise OfflineError(f"cannot reach {self.endpoint} ({error or type(error).__name__}): "
                               f"{_offline_hint(self.endpoint)}") from None
        except self.httpx.TransportError as error:
            raise FetchError(f"{method} {url} failed ({error or type(error).__name__}); "
                             "run the command again") from None

    def _check(self, response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        code = response.headers.get("x-error-code", "")
        message = response.headers.get("x-error-message", "")
        if status == 404 and code not in ("RepoNotFound", "RevisionNotFound"):
            raise EntryNotFoundError(f"{what}: no such file (HTTP 404)")
        if code == "RevisionNotFound":
            raise FetchError(f"{what}: the revision does not exist ({message or 'HTTP 404'}); check --revision")
        if status in (401, 403, 404):
            raise FetchError(f"{what}: repository not found or not accessible (HTTP {status} {code} {message}".rstrip()
                             + "); check repo_id in the assets config; for a gated or private repository log in "
                               "with `hf auth login` or set HF_TOKEN")
        if status == 429:
            raise FetchError(f"{what}: rate limited by the Hub (HTTP 429); wait a minute and run the command again")
        raise FetchError(f"{what}: HTTP {status} from the Hub; run the command again later")

    def head(self, url: str, what: str) -> Remote:
        """Size and content hash of a file, following the Hub's relative redirects (renamed repositories)."""
        current = url
        for _ in range(6):
            response = self._request("HEAD", current, headers=self.headers(current, **{"accept-encoding": "identity"}))
            location = response.headers.get("location")
            if response.is_redirect and location and not urlsplit(location).netloc:
                current = urljoin(current, location)
                continue
            break
        self._check(response, what)
        redirected = response.is_redirect and location
        etag = response.headers.get("x-linked-etag") or response.headers.get("etag")
        etag = etag.removeprefix("W/").strip('"') if etag else None
        size = response.headers.get("x-linked-size") or (None if redirected else response.headers.get("content-length"))
        return Remote(url=url, download_url=urljoin(current, location) if redirected else current, etag=etag,
                      size=int(size) if size is not None else None, commit=response.headers.get("x-repo-commit"))

    def list_files(self, source: Source, revision: str) -> list[str]:
        """Every file path of a repository at a revision (the Hub's tree API, recursive, all pages)."""
        url: str | None = (f"{self.endpoint}/api/{source.repo_type}s/{source.repo_id}/tree/{quote(revision, safe='')}"
                           "?recursive=true")
        paths: list[str] = []
        while url:
            response = self._request("GET", url, headers=self.headers(url))
            self._check(response, f"file list of {source.repo_id}@{revision}")
            paths += [item["path"] for item in response.json() if item.get("type") == "file"]
            url = response.links.get("next", {}).get("url")
        return paths

    def download(self, remote: Remote, part: Path, offset: int, label: str, on_progress: ProgressFn | None) -> bool:
        """Append the file from byte ``offset`` to ``part``; returns True when the server resumed (206)."""
        headers = self.headers(remote.download_url, **{"accept-encoding": "identity"})
        if offset:
            headers["range"] = f"bytes={offset}-"
        done = offset
        try:
            with self.client.stream("GET", remote.download_url, headers=headers, follow_redirects=True) as response:
                if response.status_code == 416 and offset and offset == remote.size:
                    return True  # already complete
                self._check(response, label)
                resumed = offset > 0 and response.status_code == 206
                if offset and not resumed:  # the server ignored the range: start over
                    done = 0
                with part.open("ab" if resumed else "wb") as stream:
                    for chunk in response.iter_bytes():  # as received: a broken connection loses nothing
                        stream.write(chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(label, done, remote.size)
                return resumed
        except (self.httpx.ConnectError, self.httpx.ConnectTimeout, self.httpx.ProxyError) as error:
            raise OfflineError(f"cannot reach {self.endpoint} ({error or type(error).__name__}): "
                               f"{_offline_hint(self.endpoint)}") from None
        except self.httpx.TransportError as error:
            total = f" of {remote.size}" if remote.size is not None else ""
            raise InterruptedDownloadError(
                f"{label}: download interrupted after {done}{total} bytes ({error or type(error).__name__}); "
                "the partial file is kept: run the same command again to resume") from None


# --- fetching -------------------------------------------------------------------------------------


def select_sources(config: AssetsConfig, names: Sequence[str] | None) -> list[Source]:
    """The sources named (by source name or repo id); all of them for None or empty."""
    if not names:
        return list(config.sources.values())
    chosen = []
    for name in names:
        match = [s for s in config.sources.values() if name in (s.name, s.repo_id)]
        if not match:
            known = ", ".join(f"{s.name} ({s.repo_id})" for s in config.sources.values())
            raise ValueError(f"--repo {name}: not in the assets config; known: {known}")
        chosen += [s for s in match if s not in chosen]
    return chosen


def _write_manifest(root: Path, results: Iterable[FileResult]) -> Path:
    """Merge the fetched files' sha256 into DEST/MANIFEST.sha256 (sha256sum format)."""
    path = root / MANIFEST_NAME
    root.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(path) if path.is_file() else {}
    entries.update({r.relative: r.sha256 for r in results if r.sha256})
    entries = {name: digest for name, digest in entries.items() if (root / name).is_file()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())))
    os.replace(tmp, path)
    return path


def fetch(
    config: AssetsConfig | None = None,
    dest: str | os.PathLike | None = None,
    *,
    repos: Sequence[str] | None = None,
    revision: str | None = None,
    manifest: str | os.PathLike | None = None,
    endpoint: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    on_progress: ProgressFn | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Download (or check) every file of the chosen sources into ``dest`` (default ``assets_dir()``).

    Raises:
        OfflineError: HF_HUB_OFFLINE is set or the Hub cannot be reached.
        ChecksumMismatchError: a downloaded file has the wrong checksum (it is deleted, not installed).
        InterruptedDownloadError: the connection broke ``retries + 1`` times (the partial file is kept).
        FetchError: any other failure (missing repository, revision or required file, HTTP errors).
    """
    from huggingface_hub import hf_hub_url

    config = config if config is not None else load_assets_config()
    sources = select_sources(config, repos)
    root = assets_dir(dest)
    endpoint = hub_endpoint(endpoint)
    if (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in _TRUE:
        raise OfflineError("HF_HUB_OFFLINE is set, so nothing is downloaded: unset it (`unset HF_HUB_OFFLINE`) "
                           "and run the command again, or copy an assets folder fetched elsewhere to "
                           f"{root} (or set KINESIS_ASSETS)")
    pins = read_manifest(manifest) if manifest is not None else {}
    hub = _Hub(endpoint, timeout, _token())
    results: list[FileResult] = []
    try:
        for source in sources:
            rev = revision or source.revision
            wanted = [(path, True) for path in source.files] + [(path, False) for path in source.optional]
            if source.include:
                listed = hub.list_files(source, rev)
                matched = [p for p in listed if any(fnmatch.fnmatchcase(p, pattern) for pattern in source.include)]
                if not matched:
                    raise FetchError(f"{source.repo_id}@{rev}: no file matches {list(source.include)} (the repository "
                                     f"has {len(listed)} files); the layout assumed in the assets config is wrong: "
                                     "edit 'include' there")
                wanted += [(path, True) for path in matched if path not in dict(wanted)]
            for path, required in wanted:
                if path.startswith("/") or ".." in path.split("/"):
                    raise FetchError(f"{source.repo_id}: refusing the file path {path!r} (outside the assets folder)")
                url = hf_hub_url(source.repo_id, path, repo_type=source.repo_type, revision=rev, endpoint=endpoint)
                pin = pins.get(f"{source.name}/{path}") or source.sha256.get(path)
                try:
                    result = _fetch_file(hub, source, path, url, pin, root, retries, on_progress)
                except EntryNotFoundError:
                    if required:
                        raise FetchError(f"{source.repo_id}@{rev} has no file {path!r} (HTTP 404): check the assets "
                                         "config (files, revision)") from None
                    result = FileResult(source.name, path, "not published")
                results.append(result)
                if on_result:
                    on_result(result)
    finally:
        hub.close()
        if results:
            _write_manifest(root, results)
    return results


def _token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # a broken token file must not stop a public download
        return None


def _fetch_file(hub: _Hub, source: Source, path: str, url: str, pin: str | None, root: Path, retries: int,
                on_progress: ProgressFn | None) -> FileResult:
    label = f"{source.name}/{path}"
    final = root / source.name / path
    remote = hub.head(url, label)
    how, expected = _expected(pin, remote)
    if final.is_file():
        digests = file_digests(final)
        if _matches(how, expected, digests) and (remote.size is None or final.stat().st_size == remote.size):
            return FileResult(source.name, path, "up to date", final.stat().st_size, digests[0], how)
    part = root / PARTIAL_DIR / source.name / (path + ".part")
    meta = part.with_name(part.name + ".json")
    part.parent.mkdir(parents=True, exist_ok=True)
    key = {"url": url, "etag": remote.etag, "size": remote.size}
    if part.is_file() and _read_json(meta) != key:
        part.unlink()  # a partial download of another version
    meta.write_text(json.dumps(key))
    resumed = False
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.is_file() else 0
        if remote.size is not None and offset > remote.size:
            part.unlink()
            offset = 0
        try:
            if remote.size is None or offset < remote.size or offset == 0:
                resumed = hub.download(remote, part, offset, label, on_progress) or resumed
            break
        except InterruptedDownloadError:
            if attempt == retries:
                raise
    size = part.stat().st_size if part.is_file() else 0
    if remote.size is not None and size != remote.size:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise FetchError(f"{label}: received {size} bytes, the Hub announced {remote.size}; the download was "
                         "deleted: run the command again")
    digests = file_digests(part)
    if not _matches(how, expected, digests):
        part.unlink()
        meta.unlink(missing_ok=True)
        got = digests[1] if how.startswith("git") else digests[0]
        raise ChecksumMismatchError(f"{label}: checksum mismatch ({how}): expected {expected}, got {got}; the "
                                    f"downloaded file was deleted and {final} left as it was. The file on the Hub "
                                    "differs from the pinned one (a new revision?) or was corrupted in transit.")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)
    meta.unlink(missing_ok=True)
    return FileResult(source.name, path, "resumed" if resumed else "downloaded", size, digests[0], how)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def verify(dest: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """Re-check DEST/MANIFEST.sha256: [(SOURCE/PATH, 'ok' | 'missing' | 'MISMATCH')]."""
    root = assets_dir(dest)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: nothing was fetched into {root} (run `kinesis assets fetch`)")
    out = []
    for name, digest in sorted(read_manifest(path).items()):
        file = root / name
        out.append((name, "missing" if not file.is_file() else "ok" if file_digests(file)[0] == digest else "MISMATCH"))
    return out
