"""The TFLite runtime boundary: the only module that touches an Interpreter.

Either `ai_edge_litert` (LiteRT, the maintained successor) or `tflite_runtime` is used, whichever
is installed, LiteRT first; both have the same Interpreter API. Callers see float32 only:
int8/uint8 models are quantized on the way in and dequantized on the way out here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("ai_edge_litert", "tflite_runtime")


class RuntimeUnavailable(ImportError):
    pass


class ModelLoadError(Exception):
    """A .tflite file that cannot be loaded; the text names the file and the cause."""


def interpreter_class(runtime: str = "auto") -> tuple[str, Any]:
    """(backend name, Interpreter class) for `runtime`: a name from BACKENDS, or "auto"."""
    names = BACKENDS if runtime == "auto" else (runtime,)
    if runtime not in (*BACKENDS, "auto"):
        raise RuntimeUnavailable(f"unknown TFLite runtime {runtime!r}: use one of auto, "
                                 + ", ".join(BACKENDS))
    for name in names:
        try:
            return name, importlib.import_module(f"{name}.interpreter").Interpreter
        except ImportError:
            continue
    raise RuntimeUnavailable(
        f"no TFLite runtime for {runtime!r}: install ai-edge-litert (pip install ai-edge-litert) "
        "or tflite-runtime (pip install 'app-tflite-inference[tflite-runtime]')"
    )


@functools.cache
def available_backends() -> tuple[str, ...]:
    """The installed runtimes (looked for once: installing one needs a restart anyway)."""
    found = []
    for name in BACKENDS:
        try:
            interpreter_class(name)
        except RuntimeUnavailable:
            continue
        found.append(name)
    return tuple(found)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int
    # Derived once here: run() consults them on every inference.
    size: int
    quantized: bool


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    return TensorSpec(
        name=detail["name"],
        index=detail["index"],
        shape=shape,
        dtype=dtype,
        scale=float(scale),
        zero_point=int(zero_point),
        size=int(np.prod(shape)),
        quantized=scale != 0.0 and dtype in (np.int8, np.uint8, np.int16),
    )


def file_version(path: Path) -> str:
    """A model's version: the start of its file's SHA-256, so any change to the file shows."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class TFLiteModel:
    """One loaded .tflite file. Not thread-safe: give each worker its own."""

    def __init__(self, path: Path, *, runtime: str = "auto", num_threads: int = 1) -> None:
        self.path = path
        self.backend, interpreter = interpreter_class(runtime)
        try:
            self.version = file_version(path)
            self._interpreter = interpreter(model_path=str(path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load model {path}: {exc}") from None
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Invoke the model on float32 arrays (reshaped to each input's shape); float32 outputs."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.path.name} takes {len(self.inputs)} inputs, got {len(inputs)}")
        for spec, value in zip(self.inputs, inputs, strict=True):
            self._interpreter.set_tensor(spec.index, _to_tensor(spec, value))
        self._interpreter.invoke()
        return [_from_tensor(spec, self._interpreter.get_tensor(spec.index)) for spec in self.outputs]


def _to_tensor(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    if value.size != spec.size:
        raise ValueError(f"input {spec.name!r} takes {spec.size} values "
                         f"(shape {list(spec.shape)}), got {value.size}")
    if spec.quantized:
        info = np.iinfo(spec.dtype)
        value = np.clip(np.round(value / spec.scale + spec.zero_point), info.min, info.max)
    return value.reshape(spec.shape).astype(spec.dtype, copy=False)


def _from_tensor(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    if spec.quantized:
        return (value.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)
    return value.astype(np.float32, copy=False)
