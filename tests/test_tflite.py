"""The TFLite runtime boundary, under both ai-edge-litert and tflite-runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from app_service.tflite import (
    BACKENDS,
    ModelLoadError,
    RuntimeUnavailable,
    TFLiteModel,
    available_backends,
    interpreter_class,
)

from .mqtt_helpers import REPO

MODELS = REPO / "models"


def test_auto_prefers_litert(both_runtimes: tuple[str, ...]):
    assert available_backends() == both_runtimes
    assert interpreter_class("auto")[0] == "ai_edge_litert"


def test_float_model(runtime: str):
    model = TFLiteModel(MODELS / "linear_regression.tflite", runtime=runtime, num_threads=2)
    assert model.backend == runtime
    (spec,) = model.inputs
    assert spec.shape == (1, 1) and spec.dtype == np.float32 and not spec.quantized
    (out,) = model.run(np.array([5.0]))
    assert out.dtype == np.float32 and abs(float(out.ravel()[0]) - 10) < 0.5
    assert len(model.version) == 12


def test_int8_model_is_quantized_at_the_boundary(runtime: str):
    path = MODELS / "pump_anomaly_int8.tflite"
    quantized = TFLiteModel(path, runtime=runtime)
    floating = TFLiteModel(MODELS / "pump_anomaly.tflite", runtime=runtime)
    (spec,) = quantized.inputs
    assert spec.dtype == np.int8 and spec.quantized and spec.scale > 0
    x = np.random.default_rng(0).normal(size=spec.size).astype(np.float32)
    (q,) = quantized.run(x)
    (f,) = floating.run(x)
    assert q.dtype == np.float32
    assert np.allclose(q, f, atol=0.05 + 0.2 * np.abs(f).max())


def test_runtimes_agree(both_runtimes: tuple[str, ...]):
    outputs = [TFLiteModel(MODELS / "linear_regression.tflite", runtime=name).run(np.array([3.0]))
               for name in both_runtimes]
    assert np.array_equal(outputs[0][0], outputs[1][0])


def test_wrong_input_size_is_a_clear_error():
    model = TFLiteModel(MODELS / "linear_regression.tflite")
    with pytest.raises(ValueError, match=r"takes 1 values \(shape \[1, 1\]\), got 3"):
        model.run(np.zeros(3))


def test_unloadable_model_names_the_file(tmp_path: Path, runtime: str):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelLoadError, match=r"broken\.tflite"):
        TFLiteModel(broken, runtime=runtime)
    with pytest.raises(ModelLoadError, match=r"missing\.tflite"):
        TFLiteModel(tmp_path / "missing.tflite", runtime=runtime)


def test_no_runtime_names_both(monkeypatch: pytest.MonkeyPatch):
    for name in BACKENDS:
        monkeypatch.setitem(sys.modules, f"{name}.interpreter", None)
    with pytest.raises(RuntimeUnavailable, match=r"ai-edge-litert.*tflite-runtime"):
        interpreter_class("auto")
    with pytest.raises(RuntimeUnavailable, match="unknown TFLite runtime 'onnx'"):
        interpreter_class("onnx")
