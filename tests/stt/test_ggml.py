"""The CTranslate2 -> ggml converter, on the bundled tiny.en model."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from voxhelm import cli
from voxhelm.stt.faster_whisper import bundled_model_path
from voxhelm.stt.ggml import (
    GGML_MAGIC,
    ConversionError,
    Ct2Model,
    export_ggml,
    read_ct2_model,
)

TINY_EN = {
    "n_vocab": 51864,
    "n_audio_ctx": 1500,
    "n_audio_state": 384,
    "n_audio_head": 6,
    "n_audio_layer": 4,
    "n_text_ctx": 448,
    "n_text_state": 384,
    "n_text_head": 6,
    "n_text_layer": 4,
    "n_mels": 80,
    "ftype": 1,
}
# 5 encoder stem tensors + 4 x 15 per encoder block + ln_post, and 2 decoder embeddings +
# 4 x 24 per decoder block (self and cross attention) + ln: OpenAI's checkpoint layout.
TENSOR_COUNT = 5 + 4 * 15 + 2 + 2 + 4 * 24 + 2


@dataclass
class Tensor:
    ttype: int
    dims: tuple[int, ...]  # ggml order: innermost first
    data: np.ndarray  # in checkpoint shape


@dataclass
class GgmlFile:
    params: dict[str, int]
    filters: np.ndarray
    tokens: list[bytes]
    tensors: dict[str, Tensor]


def read_ggml(path: Path) -> GgmlFile:
    """Parse a whisper.cpp ggml file the way whisper.cpp's loader does; it must end exactly."""
    raw = path.read_bytes()
    offset = 0

    def ints(count: int) -> tuple[int, ...]:
        nonlocal offset
        values = struct.unpack_from(f"<{count}i", raw, offset)
        offset += 4 * count
        return values

    magic, *values = ints(12)
    assert magic == GGML_MAGIC
    params = dict(zip(TINY_EN, values, strict=True))
    n_mel, n_fft = ints(2)
    filters = np.frombuffer(raw, "<f4", n_mel * n_fft, offset).reshape(n_mel, n_fft)
    offset += filters.nbytes
    tokens = []
    for _ in range(ints(1)[0]):
        (length,) = ints(1)
        tokens.append(raw[offset : offset + length])
        offset += length
    tensors = {}
    while offset < len(raw):
        n_dims, name_length, ttype = ints(3)
        dims = ints(n_dims)
        name = raw[offset : offset + name_length].decode()
        offset += name_length
        dtype = np.dtype("<f4" if ttype == 0 else "<f2")
        count = int(np.prod(dims))
        data = np.frombuffer(raw, dtype, count, offset).reshape(tuple(reversed(dims)))
        offset += data.nbytes
        tensors[name] = Tensor(ttype, tuple(dims), data)
    assert offset == len(raw)
    return GgmlFile(params, filters, tokens, tensors)


@pytest.fixture(scope="module")
def ggml(ggml_tiny_en: Path) -> GgmlFile:
    return read_ggml(ggml_tiny_en)


@pytest.fixture(scope="module")
def ct2() -> Ct2Model:
    source = bundled_model_path()
    assert source is not None
    return read_ct2_model(source / "model.bin")


def test_it_writes_a_file_of_the_upstream_size(ggml_tiny_en: Path) -> None:
    # Upstream's ggml-tiny.en.bin is 77,704,715 bytes; it also lists <|endoftext|> in its
    # vocabulary (4 + 13 bytes), which whisper.cpp would otherwise make up itself.
    assert ggml_tiny_en.stat().st_size == 77_704_715 - 17
    assert sorted(p.name for p in ggml_tiny_en.parent.iterdir()) == ["ggml-tiny.en.bin"]


def test_it_writes_the_tiny_en_hyper_parameters(ggml: GgmlFile) -> None:
    assert ggml.params == TINY_EN


def test_it_writes_whispers_mel_filter_bank(ggml: GgmlFile) -> None:
    assert ggml.filters.shape == (80, 201)
    assert (ggml.filters >= 0).all()
    peaks = ggml.filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]
    # Slaney normalization: each triangle has area 2 / bandwidth, so higher bands are lower.
    assert ggml.filters[0].max() > ggml.filters[-1].max() > 0


def test_it_writes_the_text_tokens_as_bytes(ggml: GgmlFile) -> None:
    assert len(ggml.tokens) == 50256  # the special tokens from <|endoftext|> on are implied
    assert ggml.tokens[0] == b"!"
    assert ggml.tokens[198] == b"\n"
    assert ggml.tokens[220] == b" "
    assert ggml.tokens[383] == b" The"
    assert ggml.tokens[2068] == b" quick"


def test_it_writes_the_openai_tensor_layout(ggml: GgmlFile) -> None:
    tensors = ggml.tensors
    assert len(tensors) == TENSOR_COUNT
    assert tensors["encoder.conv1.weight"].dims == (3, 80, 384)
    assert tensors["encoder.conv1.weight"].ttype == 1
    assert tensors["encoder.conv1.bias"].dims == (1, 384)
    assert tensors["encoder.conv1.bias"].ttype == 0
    assert tensors["encoder.positional_embedding"].ttype == 0
    assert tensors["decoder.positional_embedding"].dims == (384, 448)
    assert tensors["decoder.token_embedding.weight"].dims == (384, 51864)
    assert tensors["decoder.token_embedding.weight"].ttype == 1
    assert tensors["decoder.blocks.3.cross_attn.value.bias"].ttype == 0
    assert tensors["encoder.blocks.0.attn.key.weight"].dims == (384, 384)
    assert "encoder.blocks.0.attn.key.bias" not in tensors
    assert "decoder.blocks.0.cross_attn.key.bias" not in tensors
    assert {"encoder.ln_post.weight", "decoder.ln.bias", "decoder.blocks.3.mlp.2.weight"} <= set(
        tensors
    )


def test_it_splits_the_fused_attention_projections(ggml: GgmlFile, ct2: Ct2Model) -> None:
    fused = ct2.get("encoder/layer_1/self_attention/linear_0/weight")
    bias = ct2.get("encoder/layer_1/self_attention/linear_0/bias")
    block = "encoder.blocks.1.attn"
    np.testing.assert_array_equal(ggml.tensors[f"{block}.query.weight"].data, fused[:384])
    np.testing.assert_array_equal(ggml.tensors[f"{block}.key.weight"].data, fused[384:768])
    np.testing.assert_array_equal(ggml.tensors[f"{block}.value.weight"].data, fused[768:])
    np.testing.assert_array_equal(ggml.tensors[f"{block}.value.bias"].data, bias[768:])
    # CTranslate2 pads Whisper's bias-free key projection with zeros; that is what is dropped.
    assert not bias[384:768].any()
    cross = ct2.get("decoder/layer_2/attention/linear_1/weight")
    np.testing.assert_array_equal(
        ggml.tensors["decoder.blocks.2.cross_attn.value.weight"].data, cross[384:]
    )


def test_it_dequantizes_int8_weights_with_their_row_scale() -> None:
    weight = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    scale = (127.0 / np.abs(weight).max(axis=1)).astype(np.float32)
    quantized = np.round(weight * scale[:, None]).astype(np.int8)
    model = Ct2Model(
        "WhisperSpec", 6, {"w/weight": quantized, "w/weight_scale": scale}, frozenset()
    )
    np.testing.assert_allclose(model.get("w/weight"), weight, atol=0.01)


def test_it_refuses_a_model_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(struct.pack("<I", 99))
    with pytest.raises(ConversionError, match="version 99"):
        read_ct2_model(tmp_path / "model.bin")


def test_it_refuses_a_model_cut_off_inside_a_variable(tmp_path: Path) -> None:
    source = bundled_model_path()
    assert source is not None
    with (source / "model.bin").open("rb") as full:
        (tmp_path / "model.bin").write_bytes(full.read(100_000))
    with pytest.raises(ConversionError, match="truncated"):
        read_ct2_model(tmp_path / "model.bin")


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    source = bundled_model_path()
    assert source is not None
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").symlink_to(source / "model.bin")
    (broken / "vocabulary.txt").write_text("a\nb\n", encoding="utf-8")  # no <|endoftext|>
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="endoftext"):
        export_ggml(broken, out / "ggml-broken.bin")
    assert not out.exists() or not any(out.iterdir())


def test_the_cli_exports_into_the_model_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXHELM_MODEL_CACHE_DIR", str(tmp_path / "models"))
    cli.main(["models", "export-ggml"])
    written = tmp_path / "models" / "ggml-tiny.en.bin"
    assert capsys.readouterr().out.strip() == str(written)
    assert written.stat().st_size == 77_704_698


def test_the_cli_names_a_custom_source_after_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = bundled_model_path()
    assert source is not None
    custom = tmp_path / "whisper-tiny-ct2"
    custom.mkdir()
    for name in ("model.bin", "vocabulary.txt"):
        (custom / name).symlink_to(source / name)
    monkeypatch.setenv("VOXHELM_MODEL_CACHE_DIR", str(tmp_path / "models"))
    cli.main(["models", "export-ggml", "--source", str(custom)])
    assert (tmp_path / "models" / "ggml-whisper-tiny-ct2.bin").is_file()


def test_the_cli_reports_a_broken_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"\x06\x00")  # cut off inside the version field
    output = tmp_path / "out" / "ggml-broken.bin"
    with pytest.raises(SystemExit) as caught:
        cli.main(["models", "export-ggml", "--source", str(broken), "--output", str(output)])
    assert caught.value.code == 1
    assert "truncated" in capsys.readouterr().err
    assert not output.exists()
