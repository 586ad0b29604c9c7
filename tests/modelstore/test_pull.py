"""``voxhelm models pull``: from the stand-in Hub into the model cache, resumable, checked and
atomic, as a real process talking real HTTP on loopback."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sysconfig
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.hardening.disks import fill, small_disk
from tests.hubserver import COMMIT, PIPER_VOICE, ggml_tiny, tiny_files
from tests.modelstore.conftest import Cli
from voxhelm.modelcache.layout import MANIFEST, STAGING_DIR
from voxhelm.modelstore.inventory import Store
from voxhelm.tts.base import SynthesisOptions
from voxhelm.tts.piper import PiperEngine

WHISPER_CPP = Path(sysconfig.get_path("scripts")) / "whisper-cpp"

pytestmark = pytest.mark.slow

TINY_BYTES = sum(f.size for f in tiny_files().values())


def store(cli: Cli) -> Store:
    return Store(cli.cache_dir, cli.voices_dir)


def part_bytes(cli: Cli) -> int:
    staging = cli.cache_dir / STAGING_DIR
    return sum(p.stat().st_size for p in staging.rglob("*.part")) if staging.exists() else 0


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def assert_not_installed(cli: Cli, name: str = "small") -> None:
    """Nothing a loader could pick up: no model folder, no entry in the inventory."""
    assert store(cli).find_fasterwhisper(name) is None
    assert not (cli.cache_dir / "fasterwhisper" / name).exists()
    listed = json.loads(cli.run("list", "--json").stdout)
    assert name not in {row["name"] for row in listed}


def test_it_pulls_a_short_name_and_lists_it(cli: Cli) -> None:
    result = cli.run("pull", "small")
    assert result.returncode == 0, result.stderr
    assert "Installed small (" in result.stdout
    assert "VOXHELM_FASTERWHISPER_MODEL=small" in result.stdout
    # Not a terminal: plain progress lines, from 0% to 100%.
    assert "pulling small: 0% (0.0 MB of 78.1 MB)" in result.stderr
    assert "pulling small: 100% (78.1 MB of 78.1 MB)" in result.stderr
    assert "\r" not in result.stderr

    folder = cli.cache_dir / "fasterwhisper" / "small"
    for name, expected in tiny_files().items():
        assert (folder / name).read_bytes() == expected.path.read_bytes()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (manifest["repo"], manifest["commit"]) == ("Systran/faster-whisper-small", COMMIT)
    assert manifest["files"]["model.bin"]["sha256"] == tiny_files()["model.bin"].sha256
    # Only the lock file stays (removing it could let a waiting pull lock a stale inode).
    staged = [p.name for p in (cli.cache_dir / STAGING_DIR).iterdir()]
    assert staged == ["fasterwhisper-small.lock"]

    rows = {row["name"]: row for row in json.loads(cli.run("list", "--json").stdout)}
    assert rows["small"]["source"] == "pulled"
    assert rows["small"]["size_bytes"] >= TINY_BYTES
    assert rows["small"]["languages"] == ["en"]  # the stand-in serves tiny.en's files
    assert rows["small"]["serves"] is True

    again = cli.run("pull", "small")
    assert again.returncode == 0
    assert "small is already installed" in again.stdout
    assert len(cli.hub.file_requests("model.bin")) == 1


def test_it_pulls_any_repository_id_of_a_ctranslate2_model(cli: Cli) -> None:
    result = cli.run("pull", "example/whisper-ct2")
    assert result.returncode == 0, result.stderr
    assert (cli.cache_dir / "fasterwhisper" / "example--whisper-ct2" / "model.bin").is_file()
    assert "example/whisper-ct2" in cli.run("list").stdout


def test_a_repository_without_a_whisper_model_is_refused(cli: Cli) -> None:
    result = cli.run("pull", "example/not-whisper")
    assert result.returncode == 1
    assert "is not a CTranslate2 Whisper model (it lacks config.json, model.bin)" in result.stderr
    missing = cli.run("pull", "example/nothing-here")
    assert missing.returncode == 1
    assert "example/nothing-here was not found on the Hub" in missing.stderr
    unknown = cli.run("pull", "no such model")
    assert unknown.returncode == 1
    assert "Unknown model 'no such model'" in unknown.stderr


def test_it_pulls_a_piper_voice_from_the_voice_catalogue(cli: Cli) -> None:
    result = cli.run("pull", PIPER_VOICE)
    assert result.returncode == 0, result.stderr
    assert (cli.voices_dir / f"{PIPER_VOICE}.onnx").is_file()
    assert (cli.voices_dir / f"{PIPER_VOICE}.onnx.json").is_file()
    rows = {row["name"]: row for row in json.loads(cli.run("list", "--json").stdout)}
    assert rows[PIPER_VOICE]["kind"] == "piper"
    assert rows[PIPER_VOICE]["languages"] == ["en_US"]
    absent = cli.run("pull", "de_DE-nobody-low")
    assert absent.returncode == 1
    assert "has no voice de_DE-nobody-low" in absent.stderr


def test_a_killed_pull_resumes_where_it_stopped(cli: Cli) -> None:
    cli.hub.rate = 8 * 1024 * 1024  # slow enough to kill it half-way
    process = cli.start("pull", "small")
    wait_for(lambda: part_bytes(cli) > 20 * 1024 * 1024)
    process.kill()  # SIGKILL: no clean-up runs
    process.wait()
    kept = part_bytes(cli)
    assert 20 * 1024 * 1024 < kept < TINY_BYTES
    assert_not_installed(cli)

    cli.hub.rate = 0
    served_before = cli.hub.served_bytes
    result = cli.run("pull", "small")
    assert result.returncode == 0, result.stderr
    first = next(line for line in result.stderr.splitlines() if line.startswith("pulling"))
    assert not first.startswith("pulling small: 0%"), first  # it starts where it stopped
    ranges = [r.range for r in cli.hub.file_requests("model.bin")]
    assert ranges[0] is None
    assert ranges[-1] is not None and int(ranges[-1].split("=")[1].rstrip("-")) > 20 * 1024 * 1024
    # Only what was missing came over the wire the second time.
    assert cli.hub.served_bytes - served_before <= TINY_BYTES - kept + 4 * 1024 * 1024
    folder = cli.cache_dir / "fasterwhisper" / "small"
    assert (folder / "model.bin").read_bytes() == tiny_files()["model.bin"].path.read_bytes()


def test_a_corrupted_file_is_refused(cli: Cli) -> None:
    cli.hub.corrupt = {"model.bin"}
    result = cli.run("pull", "small")
    assert result.returncode == 1
    assert "model.bin of small does not match the Hub's checksum" in result.stderr
    assert_not_installed(cli)
    assert part_bytes(cli) == 0  # the bad bytes are not kept to resume from

    cli.hub.corrupt = set()
    assert cli.run("pull", "small").returncode == 0
    assert store(cli).find_fasterwhisper("small") is not None


def test_offline_mode_pulls_nothing(cli: Cli) -> None:
    result = cli.run("pull", "small", HF_HUB_OFFLINE="1")
    assert result.returncode == 1
    assert "offline mode is on (HF_HUB_OFFLINE)" in result.stderr
    assert cli.hub.requests == []
    assert_not_installed(cli)
    # Listing needs no network: the installed models are still there.
    listed = cli.run("list", HF_HUB_OFFLINE="1")
    assert listed.returncode == 0
    assert "tiny.en" in listed.stdout


def test_a_disk_too_small_is_refused_before_downloading(tmp_path: Path, cli: Cli) -> None:
    with small_disk(tmp_path / "disk", "100m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs is not allowed here")
        cache = tmp_path / "disk" / "models"
        result = cli.run("pull", "small", VOXHELM_MODEL_CACHE_DIR=str(cache))
        assert result.returncode == 1
        assert "small needs 78 MB more, and only" in result.stderr
        assert cli.hub.file_requests("model.bin") == []
        assert Store(cache, cli.voices_dir).find_fasterwhisper("small") is None


def test_a_disk_that_fills_up_during_a_pull_leaves_nothing_loadable(
    tmp_path: Path, cli: Cli
) -> None:
    with small_disk(tmp_path / "disk", "200m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs is not allowed here")
        disk = tmp_path / "disk"
        cache = disk / "models"
        cli.hub.rate = 8 * 1024 * 1024
        process = cli.start("pull", "small", VOXHELM_MODEL_CACHE_DIR=str(cache))
        wait_for(lambda: any(cache.rglob("model.bin.part")))
        fill(disk)  # another program takes the rest of the disk
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 1
        assert "The disk filled up while pulling small." in stderr
        assert Store(cache, cli.voices_dir).find_fasterwhisper("small") is None
        assert not (cache / "fasterwhisper" / "small").exists()

        (disk / "filler").unlink()
        cli.hub.rate = 0
        result = cli.run("pull", "small", VOXHELM_MODEL_CACHE_DIR=str(cache))
        assert result.returncode == 0, result.stderr
        assert Store(cache, cli.voices_dir).find_fasterwhisper("small") is not None


def test_rm_removes_a_pulled_model_and_refuses_a_bundled_one(cli: Cli) -> None:
    assert cli.run("pull", "small").returncode == 0
    removed = cli.run("rm", "small")
    assert removed.returncode == 0
    assert "Removed small (78.1 MB)." in removed.stdout
    assert_not_installed(cli)
    assert not [p for p in (cli.cache_dir / "fasterwhisper").iterdir()]

    bundled = cli.run("rm", "tiny.en")
    assert bundled.returncode == 1
    assert "tiny.en is bundled with Voxhelm's packages and cannot be removed." in bundled.stderr
    absent = cli.run("rm", "small")
    assert absent.returncode == 1
    assert "small is not installed." in absent.stderr


def test_it_pulls_a_whisper_cpp_file_and_says_whether_it_can_run(cli: Cli) -> None:
    result = cli.run("pull", "ggml-tiny.en.bin")
    assert result.returncode == 0, result.stderr
    pulled = cli.cache_dir / "ggml-tiny.en.bin"
    assert pulled.read_bytes() == ggml_tiny().path.read_bytes()
    absent = cli.run("list", "--json", VOXHELM_WHISPERCPP_BIN="no-such-whisper-cli")
    assert "ggml-tiny.en.bin" not in {r["name"] for r in json.loads(absent.stdout)}
    everything = cli.run("list", "--all", "--json", VOXHELM_WHISPERCPP_BIN="no-such-whisper-cli")
    rows = {r["name"]: r for r in json.loads(everything.stdout)}
    assert rows["ggml-tiny.en.bin"]["reason"] == (
        "the whisper.cpp program (no-such-whisper-cli) is not installed"
    )
    assert rows["ggml-tiny.en.bin"]["installed"] is True
    assert rows["ggml-small.bin"]["installed"] is False
    runnable = cli.run("list", "--json", VOXHELM_WHISPERCPP_BIN=str(WHISPER_CPP))
    listed = {r["name"]: r for r in json.loads(runnable.stdout)}
    assert listed["ggml-tiny.en.bin"]["engine"] == "whispercpp"
    assert listed["ggml-tiny.en.bin"]["languages"] == ["en"]


def test_hf_token_goes_to_the_hub(cli: Cli) -> None:
    assert cli.run("pull", "small", HF_TOKEN="hf_voxhelm_test").returncode == 0
    # huggingface_hub also fetches its list of AI agent harnesses, without a token, once a
    # day (for its user agent); every request of the pull itself carries the token.
    pulled = [r for r in cli.hub.requests if r.path != "/api/agent-harnesses"]
    assert len(pulled) == 5  # the model info and four files
    assert [r for r in pulled if r.authorization != "Bearer hf_voxhelm_test"] == []


def test_a_pulled_voice_is_offered_by_the_piper_engine(cli: Cli) -> None:
    assert cli.run("pull", PIPER_VOICE).returncode == 0
    engine = PiperEngine(make_config(cli.root).tts)
    voice = next(v for v in engine.voices() if v.name == PIPER_VOICE)
    chunks = list(engine.synthesize("Hello there.", voice, SynthesisOptions()))
    assert sum(len(c.samples) for c in chunks) > voice.sample_rate // 4  # real audio


def test_on_a_terminal_the_pull_draws_a_tqdm_bar(cli: Cli) -> None:
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide; a real one has a size (24 x 100 here).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        cli.command("pull", "small"),
        env=cli.env(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0
    text = output.decode("utf-8", "replace")
    # tqdm redraws one line with carriage returns: a bar, not a list of lines.
    assert "\r" in text
    assert "small: 100%" in text
    assert "74.5M/74.5M" in text  # 78.1 MB in tqdm's binary units
    assert "pulling small:" not in text  # no plain lines on a terminal


def test_info_shows_one_model(cli: Cli) -> None:
    assert cli.run("pull", "small").returncode == 0
    info = cli.run("info", "small").stdout
    assert "repository: Systran/faster-whisper-small" in info
    assert f"commit: {COMMIT}" in info
    assert "source: pulled" in info
    assert "languages: en" in info
    assert "last_used: -" in info
    not_installed = cli.run("info", "large-v3").stdout
    assert "installed: False" in not_installed
    assert "reason: not installed: voxhelm models pull large-v3" in not_installed
