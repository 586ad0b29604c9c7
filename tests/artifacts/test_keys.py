"""Artifact keys: ``<prefix>/jobs/<job_id>/<name>``, relative, never escaping the root."""

from __future__ import annotations

import uuid

import pytest

from voxhelm.storage.base import InvalidKey
from voxhelm.storage.keys import job_artifact_key, job_prefix, validate_key

JOB = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_it_builds_job_keys_under_the_prefix() -> None:
    assert job_artifact_key("voxhelm", JOB, "transcript.txt") == (
        f"voxhelm/jobs/{JOB}/transcript.txt"
    )


@pytest.mark.parametrize("prefix", ["", "/", "//"])
def test_an_empty_prefix_gives_a_relative_key(prefix: str) -> None:
    # The reference produced "/jobs/..." here: an absolute path outside the store root.
    assert job_artifact_key(prefix, JOB, "source.mp3") == f"jobs/{JOB}/source.mp3"


def test_it_strips_slashes_and_keeps_nested_prefixes() -> None:
    assert job_prefix("/studio/voxhelm/", JOB) == f"studio/voxhelm/jobs/{JOB}"


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "x\\y", "a\x00b"])
def test_it_refuses_names_that_are_not_one_safe_segment(name: str) -> None:
    with pytest.raises(InvalidKey):
        job_artifact_key("voxhelm", JOB, name)


@pytest.mark.parametrize(
    "key", ["/etc/passwd", "a/../../b", "a//b", "a/./b", "", "a/", "x" * 1025, "a\nb"]
)
def test_it_refuses_unsafe_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_a_prefix_cannot_smuggle_a_parent_segment() -> None:
    with pytest.raises(InvalidKey):
        job_prefix("voxhelm/..", JOB)
