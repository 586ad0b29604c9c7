"""Every code block of README.md and docs/*.md runs as shown against one live server, or parses.

A block's info string says what it is. ``sh`` and ``python`` blocks are run, each on its own
(a fresh ``bash`` or interpreter, as a reader pastes one block), against a real ``voxhelm
serve`` on loopback, with the variables the docs tell the reader to set (``VOXHELM_URL``,
``VOXHELM_TOKEN``, ``MEDIA_URL``, and ``JOB`` on the pages that use it) and the recordings
they tell the reader to have in the current folder, synthesized here under those names.
``dotenv``, ``ini``, ``yaml`` and ``json`` blocks are parsed; ``text`` (shown output) and
``mermaid`` (diagrams) are not code. A block that cannot run here (it starts a server that
runs until stopped, needs a container engine, systemd, another host or a download) has an
HTML comment ``<!-- fragment: why -->`` right before it, and is still checked as shell.
"""

from __future__ import annotations

import configparser
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import PRODUCER_TOKEN, ServerProcess, process_env, start_server
from tests.diarization.conversation import TWO_SPEAKERS, converse, has_espeak
from tests.loopback import ThreadedServer
from tests.speech import passage
from voxhelm import audio
from voxhelm.encode import encode

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>.*?)\s*$")
FRAGMENT = re.compile(r"^\s*<!-- fragment: \S.* -->\s*$")
RUN = {"sh", "python"}
PARSED = {"dotenv", "ini", "yaml", "json"}
SHOWN = {"text", "mermaid"}  # output as a program prints it, and diagrams: not code
DOCUMENTED = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
GERMAN = "Guten Morgen. Wie ist das Wetter heute in Berlin? Ich möchte einen Kaffee bestellen."
BLOCK_SECONDS = 300

# The curl the blocks run fails on an HTTP error status, as a reader would notice the error
# body; without it curl exits 0 on a 401 and a broken example would pass.
SHELL_PRELUDE = 'curl() { command curl --fail-with-body --no-progress-meter "$@"; }\n'


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    info: str
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def uses_job(self) -> bool:
        return "$JOB" in self.code and not re.search(r"^\s*JOB=", self.code, re.M)


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while not re.match(r"^ *```\s*$", lines[end]):
            end += 1
        before = next((text for text in reversed(lines[:index]) if text.strip()), "")
        code = "\n".join(text[indent:] for text in lines[index + 1 : end]) + "\n"
        blocks.append(Block(page, index + 1, opening["info"], code, bool(FRAGMENT.match(before))))
        index = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in blocks_of(page)]
RUNNABLE = [b for b in BLOCKS if b.info in RUN and not b.fragment]
PAGES_WITH_JOB = {b.page for b in RUNNABLE if b.uses_job}


def name_of(block: Block) -> str:
    return block.name


@dataclass
class Workspace:
    """The reader's current folder and environment, and the server the examples talk to."""

    folder: Path
    env: dict[str, str]
    server: ServerProcess
    jobs: dict[Path, str]


def write_mp3(path: Path, samples: np.ndarray, rate: int) -> None:
    path.write_bytes(encode(samples, rate, "mp3"))


def german_speech(folder: Path) -> audio.Audio:
    wav = folder / "german.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "130", "-w", str(wav), GERMAN], check=True)
    return audio.decode(wav.read_bytes())


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Files without an access log line each on the test's output."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def media_server(folder: Path) -> ThreadedServer:
    """Serves the reader's folder over HTTP on loopback: the host ``MEDIA_URL`` names."""
    handler = functools.partial(QuietFiles, directory=str(folder))
    return ThreadedServer(handler)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    if not has_espeak():  # the second voice of the conversation, and the German speech
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng); .ci/run installs it")
    root = tmp_path_factory.mktemp("doc-examples")
    folder = root / "reader"
    (folder / "var").mkdir(parents=True)
    # What `voxhelm serve` keeps there when no token is configured; the README reads it.
    (folder / "var" / "dev-token").write_text(PRODUCER_TOKEN + "\n", encoding="utf-8")
    speech = passage()
    write_mp3(folder / "sample.mp3", speech.samples, speech.sample_rate)
    write_mp3(folder / "episode-42.mp3", converse(TWO_SPEAKERS).samples, audio.SAMPLE_RATE)
    write_mp3(folder / "interview-de.mp3", german_speech(root).samples, audio.SAMPLE_RATE)
    media = media_server(folder)
    port = media.start()
    server_env = {
        "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
        "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
    }
    server = start_server(root / "server", server_env)
    # The reader's shell: the server's settings (a `voxhelm manage` example works on its
    # database) and nothing else of this process's environment, so an example cannot lean
    # on a TOKEN or JOB the developer running the tests happens to have exported.
    env = {
        name: value
        for name, value in process_env(root / "server", server_env).items()
        if name.startswith(("VOXHELM_", "DJANGO_")) or name in ("HOME", "LANG", "TMPDIR")
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "VOXHELM_URL": server.url,
            "VOXHELM_TOKEN": PRODUCER_TOKEN,
            "MEDIA_URL": f"http://127.0.0.1:{port}/episode-42.mp3",
        }
    )
    yield Workspace(folder, env, server, {})
    server.stop()
    media.shutdown()


def finished_job(space: Workspace, page: Path) -> str:
    """The page's ``$JOB``: a finished transcription of the conversation, with speaker labels,
    made before the page's first example and kept for its others (a page's examples follow
    each other, as a reader goes through it)."""
    if page not in space.jobs:
        with space.server.client() as client:
            with (space.folder / "episode-42.mp3").open("rb") as recording:
                upload = client.post("/v1/uploads", files={"file": recording}).json()
            job = client.post(
                "/v1/jobs",
                json={
                    "job_type": "transcribe",
                    "input": {"kind": "upload", "upload_id": upload["id"]},
                    "output": {"formats": ["text", "json", "vtt"]},
                    "diarization": {"enabled": True, "num_speakers": 2},
                },
            ).json()
            deadline = time.monotonic() + BLOCK_SECONDS
            while job["state"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.5)
                job = client.get(f"/v1/jobs/{job['id']}").json()
        assert job["state"] == "succeeded", job
        space.jobs[page] = job["id"]
    return space.jobs[page]


def run(block: Block, space: Workspace) -> subprocess.CompletedProcess[str]:
    env = dict(space.env)
    if block.page in PAGES_WITH_JOB:
        env["JOB"] = finished_job(space, block.page)
    if block.info == "python":
        command = [sys.executable, "-c", block.code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", SHELL_PRELUDE + block.code]
    return subprocess.run(
        command,
        cwd=space.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_SECONDS,
        check=False,
    )


def test_every_block_says_what_it_is() -> None:
    unknown = [
        f"{b.name} ```{b.info}"
        for b in BLOCKS
        if not b.fragment and b.info not in RUN | PARSED | SHOWN
    ]
    assert not unknown, f"tag each block sh, python, dotenv, ini, yaml, json or text: {unknown}"


def test_the_pages_use_one_convention_for_the_server_and_the_token() -> None:
    # The examples read the server from $VOXHELM_URL and the token from $VOXHELM_TOKEN; a
    # page of its own making ($TOKEN, a hard-coded port) does not run where the reader's
    # server is somewhere else.
    stray = [
        f"{b.name}: {line}"
        for b in RUNNABLE
        for line in b.code.splitlines()
        if re.search(r"\$\{?TOKEN\b|127\.0\.0\.1:8000|localhost:8000", line)
        and not line.startswith(("export VOXHELM_URL=", "#"))
    ]
    assert not stray, stray


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.fragment and b.info == "sh"], ids=name_of)
def test_a_shell_fragment_is_still_shell(block: Block) -> None:
    checked = subprocess.run(
        ["bash", "-n"], input=block.code, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.info in PARSED], ids=name_of)
def test_a_configuration_block_parses(block: Block) -> None:
    if block.info == "json":
        assert isinstance(json.loads(block.code), dict)
    elif block.info == "yaml":
        assert isinstance(yaml.safe_load(block.code), dict)
    elif block.info == "ini":
        # systemd units repeat keys (ExecStart=), which configparser's strict mode refuses.
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(block.code)
        assert parser.sections()
    else:
        names = [
            line.split("=", 1)[0]
            for line in block.code.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        assert names and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names), names


def test_every_setting_an_example_names_exists() -> None:
    # A misspelt setting in an env file or an export is ignored by the server, silently.
    # VOXHELM_URL and VOXHELM_TOKEN are the examples' own variables, VOXHELM_TEST_* switches
    # of the test suite; every secret setting also takes NAME_FILE.
    unknown = {
        f"{b.name}: {name}"
        for b in BLOCKS
        if b.info not in SHOWN
        for name in re.findall(r"\bVOXHELM_[A-Z0-9_]+", b.code)
        if name not in ("VOXHELM_URL", "VOXHELM_TOKEN")
        and not name.startswith("VOXHELM_TEST_")
        and f"`{name.removesuffix('_FILE')}`" not in DOCUMENTED
    }
    assert not unknown, f"not in docs/configuration.md: {sorted(unknown)}"


@pytest.mark.parametrize("block", RUNNABLE, ids=name_of)
def test_the_example_runs_as_shown(block: Block, workspace: Workspace) -> None:
    result = run(block, workspace)
    assert result.returncode == 0, (
        f"{block.name} exited {result.returncode}\n--- code\n{block.code}"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ("sh", 'curl -H "Authorization: Bearer $TOKEN" "$VOXHELM_URL/v1/models"\n'),
        ("sh", 'curl -H "Authorization: Bearer wrong" "$VOXHELM_URL/v1/models"\n'),
        ("python", "with open('sample.mp3', 'rb') as audio:\n    pass\naudio.read()\n"),
        ("python", "print(client.models.list())\n"),
    ],
    ids=["undefined-variable", "http-error", "closed-file", "undefined-name"],
)
def test_a_broken_example_fails(info: str, code: str, workspace: Workspace) -> None:
    # The defects the README had: an undefined $TOKEN, a file used after its with-block
    # closed it, an undefined name; and an API error that curl alone would not report.
    result = run(Block(ROOT / "README.md", 0, info, code, False), workspace)
    assert result.returncode != 0, result.stdout


def test_the_reader_has_what_the_examples_read(workspace: Workspace) -> None:
    for name in ("sample.mp3", "episode-42.mp3", "interview-de.mp3"):
        assert audio.decode((workspace.folder / name).read_bytes()).duration > 3
    assert shutil.which("jq", path=workspace.env["PATH"]), "the shell examples use jq"
