"""Typed configuration: defaults, parsing, and the settings reference staying complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import make_config
from voxhelm.config import load_config, normalize_host

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_it_has_working_defaults_with_an_empty_environment(tmp_path: Path) -> None:
    config = load_config({"VOXHELM_VAR_DIR": str(tmp_path)})
    assert config.problems == ()
    assert config.stt.backend == "fasterwhisper"
    assert config.paths.database_path == tmp_path / "db.sqlite3"
    assert config.artifacts.root == tmp_path / "artifacts"
    assert config.limits.max_upload_bytes == 25 * 1024 * 1024
    assert config.limits.max_url_download_bytes == 128 * 1024 * 1024
    assert config.limits.max_audio_seconds == 4 * 3600
    assert config.execution.transcription_mode == "django_tasks"
    assert config.stt.fasterwhisper.condition_on_previous_text is False
    assert config.auth.bearer_tokens == {}
    assert config.auth.bearer_tokens_set is False


def test_it_collects_every_problem_at_once() -> None:
    config = make_config(
        VOXHELM_REMOTE_WORKER_LEASE_SECONDS="0",
        VOXHELM_STT_DEBUG_LOGGING="sometimes",
        VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote-pull",
    )
    names = {p.name for p in config.problems}
    assert names == {
        "VOXHELM_REMOTE_WORKER_LEASE_SECONDS",
        "VOXHELM_STT_DEBUG_LOGGING",
        "VOXHELM_TRANSCRIPTION_EXECUTION_MODE",
    }


@pytest.mark.parametrize(
    "name",
    [
        "VOXHELM_REMOTE_WORKER_LEASE_SECONDS",
        "VOXHELM_REMOTE_WORKER_POLL_SECONDS",
        "VOXHELM_REMOTE_WORKER_MAX_ATTEMPTS",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_it_requires_positive_remote_worker_numbers(name: str, value: str) -> None:
    config = make_config(**{name: value})
    assert [p.name for p in config.problems] == [name]


def test_it_normalizes_allowlisted_hosts() -> None:
    config = make_config(VOXHELM_ALLOWED_URL_HOSTS="Media.Example.COM., cdn.example.org")
    assert config.fetch.allowed_url_hosts == {"media.example.com", "cdn.example.org"}
    assert normalize_host("A.B.") == "a.b"


def test_it_reads_fallback_backend_rules() -> None:
    assert make_config(VOXHELM_STT_FALLBACK_BACKEND="").stt.fallback_backend == ""
    assert make_config(VOXHELM_STT_FALLBACK_BACKEND="none").stt.fallback_backend == ""
    assert make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt.fallback_backend == "mlx"
    bad = make_config(VOXHELM_STT_FALLBACK_BACKEND="nope")
    assert bad.problems[0].name == "VOXHELM_STT_FALLBACK_BACKEND"


def test_it_rejects_an_unknown_stt_backend() -> None:
    config = make_config(VOXHELM_STT_BACKEND="whisper")
    assert config.problems[0].name == "VOXHELM_STT_BACKEND"


def test_it_strips_slashes_from_the_artifact_prefix() -> None:
    assert make_config(VOXHELM_ARTIFACT_PREFIX="/voxhelm/").artifacts.prefix == "voxhelm"


def test_it_rejects_a_non_postgres_database_url() -> None:
    config = make_config(DATABASE_URL="mysql://x/y")
    assert config.problems[0].name == "DATABASE_URL"


def test_it_reads_the_huggingface_token_with_hf_token_fallback() -> None:
    assert make_config(HF_TOKEN="hf_x").diarization.huggingface_token == "hf_x"
    both = make_config(HF_TOKEN="hf_x", VOXHELM_HUGGINGFACE_TOKEN="hf_y")
    assert both.diarization.huggingface_token == "hf_y"


def test_it_reads_tokens_from_files(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("archive=from-file\n")
    config = load_config(
        {"VOXHELM_BEARER_TOKENS_FILE": str(tokens), "VOXHELM_VAR_DIR": str(tmp_path)}
    )
    assert config.auth.bearer_tokens == {"archive": "from-file"}


def test_the_settings_reference_documents_every_variable() -> None:
    names = {n for n in make_config().names_read if not n.endswith("_FILE")}
    documented = set(re.findall(r"`((?:VOXHELM|DJANGO|DATABASE|HF)_[A-Z0-9_]*)`", DOCS.read_text()))
    assert sorted(names - documented) == []


def test_it_reads_the_operations_settings(tmp_path: Path) -> None:
    (tmp_path / "metrics").write_text("scrape-secret\n", encoding="utf-8")
    config = make_config(
        VOXHELM_STT_HOTWORDS="Voxhelm, Quillboro,Voxhelm",
        VOXHELM_MODEL_IDLE_SECONDS="300",
        VOXHELM_LOG_FORMAT="JSON",
        VOXHELM_METRICS_TOKEN_FILE=str(tmp_path / "metrics"),
    )
    assert config.problems == ()
    assert config.stt.hotwords == ("Voxhelm", "Quillboro")
    assert config.stt.model_idle_seconds == 300
    assert config.http.log_format == "json"
    assert config.auth.metrics_token == "scrape-secret"
    defaults = make_config()
    assert (defaults.stt.model_idle_seconds, defaults.http.log_format) == (0, "text")
    assert defaults.auth.metrics_token == ""


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_it_refuses_a_bad_idle_time(value: str) -> None:
    config = make_config(VOXHELM_MODEL_IDLE_SECONDS=value)
    assert [p.name for p in config.problems] == ["VOXHELM_MODEL_IDLE_SECONDS"]
