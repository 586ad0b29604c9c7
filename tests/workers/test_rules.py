"""The framework-free rules of the protocol: metadata sanitization, capability matching,
the worker's env file and its Django-free imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.s3server import S3Server
from voxhelm.batch.request import DiarizationRequest
from voxhelm.diarization.base import COUNTS
from voxhelm.diarization.base import KNOWN_STRATEGY as KNOWN
from voxhelm.errors import InvalidInput
from voxhelm.jobs.diarization_options import COUNTS as OPTION_COUNTS
from voxhelm.jobs.diarization_options import KNOWN_STRATEGY as OPTION_KNOWN
from voxhelm.remote_worker.cli import EnvFileError, _warm_up_store, read_env_file
from voxhelm.storage.s3 import S3Store
from voxhelm.storage.stores import active_store
from voxhelm.worker_protocol.capabilities import KNOWN_STRATEGY, advertised, matches, requirements
from voxhelm.worker_protocol.messages import Capabilities
from voxhelm.worker_protocol.metadata import is_url_like, known_speaker_summary, worker_fields


@pytest.mark.parametrize(
    ("text", "url_like"),
    [
        ("https://cdn.example.com/a.mp3", True),
        ("//cdn.example.com/a", True),
        ("cdn.host/x", True),
        ("host:8080/x", True),
        ("a.b?x", True),
        ("mlx-community/whisper-large-v3-mlx", False),
        ("audio/mpeg", False),
        ("tiny.en", False),
        ("large-v3", False),
    ],
)
def test_it_recognizes_url_like_strings(text: str, url_like: bool) -> None:
    assert is_url_like(text) is url_like


def test_it_keeps_only_typed_scalars_of_worker_metadata() -> None:
    kept = worker_fields(
        {
            "backend": " fasterwhisper ",
            "model": "mlx-community/whisper-large-v3-mlx",
            "language": {"code": "en"},
            "duration_seconds": math.nan,
            "processing_seconds": True,
            "source_url": "https://cdn.example.com/x.mp3",
            "extra": "kept?",
        }
    )
    assert kept == {"backend": "fasterwhisper", "model": "mlx-community/whisper-large-v3-mlx"}
    assert worker_fields({"duration_seconds": -1, "processing_seconds": math.inf}) == {}
    assert worker_fields({"model": "x" * 257, "language": "https://x.example/en"}) == {}
    assert worker_fields({"duration_seconds": 3, "processing_seconds": 0.5}) == {
        "duration_seconds": 3,
        "processing_seconds": 0.5,
    }


def test_it_filters_the_known_speaker_summary_to_the_jobs_speakers() -> None:
    summary = {
        "strategy": KNOWN,
        "embedding_model": "campplus",
        "segment_count": 4,
        "confident_segment_count": -1,
        "margin_median": math.inf,
        "min_top_similarity": 0.5,
        "known_speakers": ["Johannes", "Stranger"],
        "confident_speaker_distribution": {"Johannes": 3, "Stranger": 1, "Dominik": 1.5},
        "raw_diarization_available": True,
        "reference_url": "https://refs.example.com/j.wav",
    }
    kept = known_speaker_summary(
        {"diarization": {"known_speaker_summary": summary}}, ["Johannes", "Dominik"]
    )
    assert kept == {
        "strategy": KNOWN,
        "embedding_model": "campplus",
        "segment_count": 4,
        "min_top_similarity": 0.5,
        "known_speakers": ["Johannes"],
        "confident_speaker_distribution": {"Johannes": 3},
        "raw_diarization_available": True,
    }
    with pytest.raises(InvalidInput, match="known_speaker_summary"):
        known_speaker_summary({"diarization": {"known_speaker_summary": []}}, ["Johannes"])


def test_the_core_and_the_request_validation_agree_on_the_diarization_vocabulary() -> None:
    assert (COUNTS, KNOWN) == (OPTION_COUNTS, OPTION_KNOWN) == (COUNTS, KNOWN_STRATEGY)


def test_it_resolves_aliases_before_matching(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    capabilities = advertised(config)
    for alias in ("auto", "whisper-1", "gpt-4o-mini-transcribe"):
        needs = requirements(alias, ["text"], DiarizationRequest(), config.stt)
        assert needs is not None
        assert (needs.backend, needs.model) == ("fasterwhisper", "tiny.en")
        assert matches(capabilities, needs)
    needs = requirements("auto", ["text", "srt"], DiarizationRequest(), config.stt)
    assert needs is not None
    assert not matches(
        Capabilities(**{**capabilities.model_dump(), "output_formats": ["text"]}), needs
    )


def test_known_speaker_jobs_need_the_sidecar_and_the_embedding_model(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    known = {"enabled": True, "strategy": KNOWN, "known_speakers": []}
    needs = requirements("auto", ["text"], DiarizationRequest.from_stored(known), config.stt)
    assert needs is not None and needs.embedding_model == "campplus"
    capabilities = advertised(config)
    assert matches(capabilities, needs)
    no_sidecar = capabilities.model_copy(update={"output_formats": ["text", "json"]})
    assert not matches(no_sidecar, needs)
    other_model = requirements(
        "auto",
        ["text"],
        DiarizationRequest.from_stored({**known, "known_speaker": {"embedding_model": "ecapa"}}),
        config.stt,
    )
    assert other_model is not None and not matches(capabilities, other_model)
    plain = advertised(make_config(tmp_path, VOXHELM_DIARIZATION_BACKEND="none"))
    assert not plain.diarization.anonymous and "speakers" not in plain.output_formats
    assert not matches(plain, needs)


def test_it_reads_env_files(tmp_path: Path) -> None:
    path = tmp_path / "worker.env"
    path.write_text(
        "# a worker\n\nexport VOXHELM_WORKER_ID=atlas\nVOXHELM_WORKER_TOKEN='a b#c' # quoted\n"
    )
    assert read_env_file(path) == {"VOXHELM_WORKER_ID": "atlas", "VOXHELM_WORKER_TOKEN": "a b#c"}
    path.write_text("A=1\nB=2 C=3\n")
    with pytest.raises(EnvFileError, match=r"worker.env:2: expected exactly one KEY=VALUE"):
        read_env_file(path)
    path.write_text("no-equals\n")
    with pytest.raises(EnvFileError, match=":1:"):
        read_env_file(path)


def test_the_remote_worker_never_imports_django() -> None:
    code = (
        "import sys, json, voxhelm.remote_worker.cli, voxhelm.remote_worker.runner, "
        "voxhelm.batch.transcribe; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'django')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == []


def test_the_worker_cli_explains_missing_settings(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "VOXHELM_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.remote_worker.cli", "--once"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "Missing required worker configuration" in result.stderr
    bad = tmp_path / "bad.env"
    bad.write_text("A=1 B=2\n")
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.remote_worker.cli", "--env-file", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert f"{bad}:1:" in result.stderr


def test_the_remote_worker_builds_its_s3_client_before_the_first_job(
    tmp_path: Path, s3_server: S3Server
) -> None:
    config = make_config(tmp_path, **s3_server.env(s3_server.new_bucket()))
    store = active_store(config.artifacts)
    assert isinstance(store, S3Store) and store._client is None
    _warm_up_store(config)
    assert store._client is not None
    store.client.list_objects_v2(Bucket=store.bucket)  # a usable client, not a placeholder
