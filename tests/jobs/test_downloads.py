"""What a download is saved as: the source's stem, the format's extension, RFC 6266/5987."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from voxhelm.jobs.downloads import content_disposition, download_filename, sanitize_stem
from voxhelm.jobs.models import Job, JobType


def job_named(source: dict[str, Any], context: dict[str, Any] | None = None, **fields: Any) -> Job:
    # An unsaved row: naming reads only its fields.
    return Job(input_data=source, context_data=context or {}, **fields)


def saved_as(header: str) -> str:
    """The name a client that knows RFC 6266 saves as: ``filename*`` when given (RFC 5987:
    charset, language, percent-encoded UTF-8), else ``filename``."""
    params = dict(part.strip().split("=", 1) for part in header.split(";")[1:])
    if "filename*" in params:
        charset, _language, encoded = params["filename*"].split("'", 2)
        assert charset == "UTF-8"
        return unquote(encoded, encoding="utf-8", errors="strict")
    return params["filename"].strip('"')


@pytest.mark.parametrize(
    ("artifact", "expected"),
    [
        ("transcript.txt", "episode-42.txt"),
        ("transcript.json", "episode-42.json"),
        ("transcript.vtt", "episode-42.vtt"),
        ("transcript.srt", "episode-42.srt"),
        ("transcript.dote.json", "episode-42.dote.json"),
        ("transcript.podlove.json", "episode-42.podlove.json"),
        ("transcript.speakers.json", "episode-42.speakers.json"),
    ],
)
def test_each_format_keeps_its_whole_extension(artifact: str, expected: str) -> None:
    job = job_named({"kind": "url", "url": "https://cdn.example.com/feed/episode-42.mp3?x=1"})
    assert download_filename(job, artifact) == expected


def test_an_upload_is_named_by_its_file_name_and_a_console_job_by_its_context() -> None:
    upload = job_named({"kind": "upload", "upload_id": "x", "filename": "Folge 3.final.wav"})
    assert download_filename(upload, "transcript.srt") == "Folge 3.final.srt"
    console = job_named({"kind": "upload"}, {"source_name": "kitchen.wav"})
    assert download_filename(console, "transcript.vtt") == "kitchen.vtt"


def test_a_job_without_a_name_falls_back() -> None:
    nameless = job_named({"kind": "url", "url": "https://media.example.com/"})
    assert download_filename(nameless, "transcript.txt") == "transcript.txt"
    speech = job_named({"kind": "text", "text": "Hi"}, job_type=JobType.SYNTHESIZE)
    assert download_filename(speech, "speech.mp3") == f"{speech.pk}.mp3"
    assert download_filename(speech, "speech.opus") == f"{speech.pk}.opus"


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ('say "hi".wav', "say hi"),
        ("..\\..\\etc\\passwd", "passwd"),
        ("a/b/c.mp3", "c"),
        ("tab\there\nnew\x00line\u202e.wav", "tab here newline"),
        ("...hidden.wav", "hidden"),
        ("   ", ""),
        ("x" * 300 + ".wav", "x" * 120),
        ("Grüße aus Köln — Folge 3.wav", "Grüße aus Köln — Folge 3"),
    ],
)
def test_a_stem_carries_nothing_that_breaks_a_header_or_a_path(name: str, stem: str) -> None:
    assert sanitize_stem(name) == stem


def test_an_ascii_name_is_a_plain_quoted_filename() -> None:
    assert content_disposition("episode-42.srt") == 'attachment; filename="episode-42.srt"'


def test_a_non_ascii_name_has_an_ascii_fallback_and_the_exact_utf8_name() -> None:
    header = content_disposition("Grüße aus Köln — Folge 3.txt")
    assert header == (
        'attachment; filename="Gru_e aus Koln _ Folge 3.txt"; '
        "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln%20%E2%80%94%20Folge%203.txt"
    )
    assert header.isascii()
    assert saved_as(header) == "Grüße aus Köln — Folge 3.txt"
    assert saved_as(content_disposition("日本語.vtt")) == "日本語.vtt"
