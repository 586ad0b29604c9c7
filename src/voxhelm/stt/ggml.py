"""Converts a CTranslate2 Whisper model (faster-whisper's format) to a whisper.cpp ggml file.

No package ships ggml weights, but the bundled tiny.en model is a CTranslate2 model: the
same weights in another container. This module reads CTranslate2's ``model.bin``, undoes its
layer fusions and writes the legacy ggml file whisper.cpp loads, laid out as whisper.cpp's own
``convert-pt-to-ggml.py`` lays out OpenAI's checkpoints (tensor names, shapes and types).

Formats, little endian throughout:

* CTranslate2 ``model.bin``: u32 version, spec name, u32 revision, u32 variable count, then
  per variable: name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, data; then u32
  alias count and (alias, target) name pairs. A name is a u16 length (counting a trailing
  NUL) and the UTF-8 bytes with the NUL.
* ggml: i32 magic, 11 i32 hyper-parameters, the mel filter bank, the vocabulary (without
  the special tokens, which whisper.cpp makes up itself), then per tensor: i32 rank, i32
  name length, i32 type (0 f32, 1 f16), dims innermost first, name, data.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

GGML_MAGIC = 0x67676D6C  # "ggml"
GGML_F32, GGML_F16 = 0, 1
SUPPORTED_CT2_VERSIONS = range(5, 7)  # the layouts read below; refuse what we have not seen
ENDOFTEXT = "<|endoftext|>"
SAMPLE_RATE, N_FFT = 16000, 400

_CT2_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16, widened to float32 by _as_float
}
_BFLOAT16 = 5
# Upstream keeps these in f32 although they are 2-D: whisper.cpp allocates them as f32.
_F32_TENSORS = frozenset(
    {
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    }
)


class ConversionError(ValueError):
    """The input is not a CTranslate2 Whisper model this converter understands."""


@dataclass(frozen=True)
class Ct2Model:
    """The variables of a CTranslate2 ``model.bin`` (arrays view a read-only memory map)."""

    spec: str
    version: int
    variables: dict[str, np.ndarray]
    bfloat16: frozenset[str]

    def get(self, name: str) -> np.ndarray:
        """Variable ``name`` as float32 (int8/int16 weights dequantized with their scale)."""
        if name not in self.variables:
            raise ConversionError(f"model.bin has no variable '{name}'")
        value = self.variables[name]
        if name in self.bfloat16:
            widened: np.ndarray = (value.astype(np.uint32) << 16).view(np.float32)
            return widened
        if value.dtype.kind == "i":
            scale = self.variables.get(f"{name}_scale")
            if scale is None:
                raise ConversionError(f"quantized variable '{name}' has no scale")
            scale = scale.astype(np.float32)
            if scale.ndim == 1:  # per output row (int8)
                scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
            dequantized: np.ndarray = value.astype(np.float32) / scale
            return dequantized
        return value

    def scalar(self, name: str) -> int:
        return int(self.variables[name].reshape(-1)[0])


def read_ct2_model(path: Path) -> Ct2Model:
    """Read the variables of a CTranslate2 ``model.bin`` without loading it into memory."""
    if path.stat().st_size == 0:  # np.memmap cannot map an empty file
        raise ConversionError("model.bin is truncated")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buffer = data.data  # struct reads the header fields straight from the mapping
    offset = 0

    def unpack(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, buffer, offset)
        offset += struct.calcsize(fmt)
        return int(value)

    def name() -> str:
        nonlocal offset
        length = unpack("H")
        raw = bytes(data[offset : offset + length])
        offset += length
        return raw.rstrip(b"\0").decode("utf-8")

    try:
        version = unpack("I")
        if version not in SUPPORTED_CT2_VERSIONS:
            raise ConversionError(f"unsupported CTranslate2 model version {version}")
        spec = name()
        unpack("I")  # spec revision
        variables: dict[str, np.ndarray] = {}
        bfloat16: set[str] = set()
        for _ in range(unpack("I")):
            var_name = name()
            dims = tuple(unpack("I") for _ in range(unpack("B")))
            type_id = unpack("B")
            size = unpack("I")
            if type_id not in _CT2_DTYPES:
                raise ConversionError(f"variable '{var_name}' has unknown dtype {type_id}")
            dtype = _CT2_DTYPES[type_id]
            if size != dtype.itemsize * int(np.prod(dims, dtype=np.int64)):
                raise ConversionError(f"variable '{var_name}' has a wrong byte count")
            if offset + size > len(data):
                raise ConversionError("model.bin is truncated")
            variables[var_name] = data[offset : offset + size].view(dtype).reshape(dims)
            if type_id == _BFLOAT16:
                bfloat16.add(var_name)
            offset += size
        for _ in range(unpack("I")):
            alias, target = name(), name()
            variables[alias] = variables[target]
    except ConversionError:
        raise
    except (struct.error, ValueError, KeyError) as exc:  # short reads, bad names, bad aliases
        raise ConversionError(f"model.bin is truncated or damaged: {exc}") from exc
    if spec != "WhisperSpec":
        raise ConversionError(f"not a Whisper model (spec {spec!r})")
    return Ct2Model(spec, version, variables, frozenset(bfloat16))


# -- tensors ---------------------------------------------------------------------------------


def _layer_count(model: Ct2Model, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    indexes = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    return max(indexes) + 1 if indexes else 0


def _linear(model: Ct2Model, ct2: str, ggml: str) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{ggml}.weight", model.get(f"{ct2}/weight")
    yield f"{ggml}.bias", model.get(f"{ct2}/bias")


def _layer_norm(model: Ct2Model, ct2: str, ggml: str) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{ggml}.weight", model.get(f"{ct2}/gamma")
    yield f"{ggml}.bias", model.get(f"{ct2}/beta")


def _split_attention(
    model: Ct2Model, fused: str, ggml: str, parts: tuple[str, ...]
) -> Iterator[tuple[str, np.ndarray]]:
    """Undo CTranslate2's fused projection; Whisper's key projection has no bias."""
    weights = np.split(model.get(f"{fused}/weight"), len(parts))
    biases = np.split(model.get(f"{fused}/bias"), len(parts))
    for part, weight, bias in zip(parts, weights, biases, strict=True):
        yield f"{ggml}.{part}.weight", weight
        if part != "key":
            yield f"{ggml}.{part}.bias", bias


def _block(model: Ct2Model, side: str, index: int) -> Iterator[tuple[str, np.ndarray]]:
    ct2, ggml = f"{side}/layer_{index}", f"{side}.blocks.{index}"
    yield from _split_attention(
        model, f"{ct2}/self_attention/linear_0", f"{ggml}.attn", ("query", "key", "value")
    )
    yield from _linear(model, f"{ct2}/self_attention/linear_1", f"{ggml}.attn.out")
    yield from _layer_norm(model, f"{ct2}/self_attention/layer_norm", f"{ggml}.attn_ln")
    if side == "decoder":
        yield from _linear(model, f"{ct2}/attention/linear_0", f"{ggml}.cross_attn.query")
        yield from _split_attention(
            model, f"{ct2}/attention/linear_1", f"{ggml}.cross_attn", ("key", "value")
        )
        yield from _linear(model, f"{ct2}/attention/linear_2", f"{ggml}.cross_attn.out")
        yield from _layer_norm(model, f"{ct2}/attention/layer_norm", f"{ggml}.cross_attn_ln")
    yield from _linear(model, f"{ct2}/ffn/linear_0", f"{ggml}.mlp.0")
    yield from _linear(model, f"{ct2}/ffn/linear_1", f"{ggml}.mlp.2")
    yield from _layer_norm(model, f"{ct2}/ffn/layer_norm", f"{ggml}.mlp_ln")


def ggml_tensors(model: Ct2Model) -> Iterator[tuple[str, np.ndarray]]:
    """The tensors of the ggml file, named as in OpenAI's checkpoints, in checkpoint shapes."""
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", model.get(f"encoder/{conv}/weight")
        # whisper.cpp adds the bias to a [frames, channels] result, so it wants [channels, 1].
        yield f"encoder.{conv}.bias", model.get(f"encoder/{conv}/bias").reshape(-1, 1)
    yield "encoder.positional_embedding", model.get("encoder/position_encodings/encodings")
    for index in range(_layer_count(model, "encoder")):
        yield from _block(model, "encoder", index)
    yield from _layer_norm(model, "encoder/layer_norm", "encoder.ln_post")
    yield "decoder.token_embedding.weight", model.get("decoder/embeddings/weight")
    yield "decoder.positional_embedding", model.get("decoder/position_encodings/encodings")
    for index in range(_layer_count(model, "decoder")):
        yield from _block(model, "decoder", index)
    yield from _layer_norm(model, "decoder/layer_norm", "decoder.ln")


# -- header, mel filters, vocabulary -----------------------------------------------------------


def hyper_parameters(model: Ct2Model) -> dict[str, int]:
    """whisper.cpp's 11 hyper-parameters, in file order (``ftype`` 1: f16 weights)."""
    conv1 = model.variables["encoder/conv1/weight"]
    return {
        "n_vocab": model.variables["decoder/embeddings/weight"].shape[0],
        "n_audio_ctx": model.variables["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": conv1.shape[0],
        "n_audio_head": model.scalar("encoder/num_heads"),
        "n_audio_layer": _layer_count(model, "encoder"),
        "n_text_ctx": model.variables["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": model.variables["decoder/embeddings/weight"].shape[1],
        "n_text_head": model.scalar("decoder/num_heads"),
        "n_text_layer": _layer_count(model, "decoder"),
        "n_mels": conv1.shape[1],
        "ftype": GGML_F16,
    }


def mel_filters(n_mels: int) -> np.ndarray:
    """Whisper's slaney-normalized mel filter bank, ``[n_mels, N_FFT // 2 + 1]`` float32.

    faster-whisper computes the same bank OpenAI ships in ``mel_filters.npz`` (librosa's).
    """
    from faster_whisper.feature_extractor import FeatureExtractor

    filters = FeatureExtractor.get_mel_filters(SAMPLE_RATE, N_FFT, n_mels=n_mels)
    return np.asarray(filters, dtype="<f4")


def _unicode_to_byte() -> dict[str, int]:
    """GPT-2's reversible byte <-> printable-character table, character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    table = {chr(b): b for b in printable}
    shifted = 0
    for byte in range(256):
        if byte not in printable:
            table[chr(256 + shifted)] = byte
            shifted += 1
    return table


def vocabulary_bytes(vocabulary: Path) -> list[bytes]:
    """The byte strings of the text tokens in CTranslate2's ``vocabulary.txt``.

    Stops before ``<|endoftext|>``: whisper.cpp synthesizes every special token itself, as
    the vocabulary in upstream's ggml files shows.
    """
    table = _unicode_to_byte()
    # split("\n"), not splitlines(): no token holds a newline, but some hold characters that
    # splitlines() would treat as line breaks.
    lines = vocabulary.read_text(encoding="utf-8").split("\n")
    if ENDOFTEXT not in lines:
        raise ConversionError(f"{vocabulary.name} has no {ENDOFTEXT} token")
    try:
        return [bytes(table[c] for c in token) for token in lines[: lines.index(ENDOFTEXT)]]
    except KeyError as exc:
        raise ConversionError(f"{vocabulary.name} holds a token outside GPT-2's table") from exc


# -- writing -----------------------------------------------------------------------------------


def _write_tensor(out: BinaryIO, name: str, value: np.ndarray) -> None:
    f32 = value.ndim < 2 or name in _F32_TENSORS
    data = np.ascontiguousarray(value, dtype="<f4" if f32 else "<f2")
    encoded = name.encode("utf-8")
    out.write(struct.pack("<iii", data.ndim, len(encoded), GGML_F32 if f32 else GGML_F16))
    out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
    out.write(encoded)
    out.write(data.tobytes())


def write_ggml(model: Ct2Model, vocabulary: list[bytes], out: BinaryIO) -> int:
    """Write the ggml file for ``model`` to ``out``; returns the number of tensors."""
    params = hyper_parameters(model)
    out.write(struct.pack("<12i", GGML_MAGIC, *params.values()))
    filters = mel_filters(params["n_mels"])
    out.write(struct.pack("<2i", *filters.shape))
    out.write(filters.tobytes())
    out.write(struct.pack("<i", len(vocabulary)))
    for token in vocabulary:
        out.write(struct.pack("<i", len(token)))
        out.write(token)
    count = 0
    for name, value in ggml_tensors(model):
        _write_tensor(out, name, value)
        count += 1
    return count


def export_ggml(ct2_model_dir: Path, output: Path) -> Path:
    """Convert the CTranslate2 Whisper model in ``ct2_model_dir`` to a ggml file at ``output``.

    ``ct2_model_dir`` holds ``model.bin`` and ``vocabulary.txt`` (as faster-whisper models
    do). The file is written next to ``output`` under a temporary name and renamed into
    place, so a reader never sees half a model. Raises :class:`ConversionError` for a model
    this converter cannot read and ``OSError`` for I/O failures.
    """
    model = read_ct2_model(ct2_model_dir / "model.bin")
    vocabulary = vocabulary_bytes(ct2_model_dir / "vocabulary.txt")
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            write_ggml(model, vocabulary, out)
            out.flush()
            os.fsync(out.fileno())
        temp.chmod(0o644)  # mkstemp creates 0600; a model file is not a secret
        temp.replace(output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return output
