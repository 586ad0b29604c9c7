"""System checks: every cross-setting rule reports an error with its ID."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_config
from voxhelm.checks import check_configuration, config_messages


def ids(**env: str) -> list[str]:
    return [m.id for m in config_messages(make_config(**env)) if m.id]


def test_it_passes_the_test_configuration() -> None:
    assert ids() == []


def test_it_reports_each_invalid_value_as_e001() -> None:
    messages = config_messages(
        make_config(VOXHELM_REMOTE_WORKER_LEASE_SECONDS="0", VOXHELM_MAX_UPLOAD_BYTES="big")
    )
    assert [m.id for m in messages] == ["voxhelm.E001", "voxhelm.E001"]
    text = " ".join(m.msg for m in messages)
    assert "VOXHELM_REMOTE_WORKER_LEASE_SECONDS" in text
    assert "VOXHELM_MAX_UPLOAD_BYTES" in text


@pytest.mark.parametrize("name", ["VOXHELM_BEARER_TOKENS", "VOXHELM_WORKER_TOKENS"])
def test_it_rejects_the_reserved_label(name: str) -> None:
    assert "voxhelm.E002" in ids(**{name: '{"__operator_ui__": "abc"}'})


def test_it_rejects_a_token_shared_by_producers_and_workers() -> None:
    messages = config_messages(
        make_config(VOXHELM_BEARER_TOKENS="archive=same", VOXHELM_WORKER_TOKENS="atlas=same")
    )
    assert [m.id for m in messages] == ["voxhelm.E003"]
    assert "same" not in messages[0].msg  # the token itself is never printed
    assert "atlas" in messages[0].msg


def test_it_rejects_one_worker_token_for_two_workers() -> None:
    assert ids(VOXHELM_WORKER_TOKENS="atlas=t1,zeus=t1") == ["voxhelm.E004"]


def test_it_requires_worker_tokens_s3_and_full_s3_settings_for_remote_pull() -> None:
    found = ids(VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote_pull", VOXHELM_WORKER_TOKENS="")
    assert found == ["voxhelm.E005", "voxhelm.E006", "voxhelm.E007"]


def test_remote_synthesis_alone_needs_the_remote_pull_prerequisites_too() -> None:
    messages = config_messages(
        make_config(VOXHELM_SYNTHESIS_EXECUTION_MODE="remote_pull", VOXHELM_WORKER_TOKENS="")
    )
    assert [m.id for m in messages] == ["voxhelm.E005", "voxhelm.E006", "voxhelm.E007"]
    assert messages[0].msg.startswith("VOXHELM_SYNTHESIS_EXECUTION_MODE=remote_pull requires")


def test_it_names_each_missing_s3_setting() -> None:
    messages = config_messages(
        make_config(
            VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote_pull",
            VOXHELM_ARTIFACT_BACKEND="s3",
            VOXHELM_ARTIFACT_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        )
    )
    assert [m.id for m in messages] == ["voxhelm.E007"]
    assert "VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID" in messages[0].msg
    assert "VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY" in messages[0].msg
    assert "VOXHELM_ARTIFACT_S3_ENDPOINT_URL" not in messages[0].msg


def test_it_accepts_a_complete_remote_pull_configuration() -> None:
    assert (
        ids(
            VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote_pull",
            VOXHELM_ARTIFACT_BACKEND="s3",
            VOXHELM_ARTIFACT_S3_ENDPOINT_URL="http://127.0.0.1:9000",
            VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID="key",
            VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY="secret",
        )
        == []
    )


def test_it_warns_when_no_producer_tokens_are_configured() -> None:
    assert ids(VOXHELM_BEARER_TOKENS="") == ["voxhelm.W001"]


def test_it_warns_when_the_default_engine_is_unavailable(configure: Any, tmp_path: Any) -> None:
    configure(VOXHELM_FASTERWHISPER_MODEL=str(tmp_path / "no-such-model"))
    messages = check_configuration()
    assert [m.id for m in messages] == ["voxhelm.W002"]
    assert "fasterwhisper" in messages[0].msg
