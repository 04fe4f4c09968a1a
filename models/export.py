"""TensorFlow-side helpers shared by the training scripts: seeding, TFLite export, manifests."""

import contextlib
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
import yaml

MODELS_DIR = Path(__file__).resolve().parent


def load_tensorflow(seed: int) -> ModuleType:
    """Import TensorFlow quietly with every source of randomness pinned to `seed`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN kernels may reorder float sums between runs; plain kernels keep training repeatable.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def _convert(converter, path: Path) -> None:
    # The converter prints a SavedModel summary and warns that int8 inputs come without
    # statistics (they come from the representative data); keep the training log readable.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        path.write_bytes(converter.convert())
    print(f"wrote {path.name} ({path.stat().st_size} bytes)")


def convert_float(model, path: Path) -> None:
    """Write a Keras model as a float32 .tflite (batch dimension 1, resizable)."""
    import tensorflow as tf

    _convert(tf.lite.TFLiteConverter.from_keras_model(model), path)


def convert_int8(model, calibration: np.ndarray, path: Path) -> None:
    """Write a full-integer model (int8 weights, activations, inputs and outputs).

    `calibration` holds model inputs (first axis = samples) that span the range the model
    sees in service; the quantization ranges of every tensor come from them.
    """
    import tensorflow as tf

    def representative() -> Iterable[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[np.newaxis].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    _convert(converter, path)


def write_manifest(name: str, body: dict) -> Path:
    """Write models/NAME.yaml: the manifest the service reads beside NAME.tflite."""
    path = MODELS_DIR / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **body}, sort_keys=False, width=100))
    return path


def feature_stats(values: np.ndarray, resources: tuple[str, ...], by_range: bool = False) -> list[dict]:
    """Manifest feature entries normalising each feature (last axis) of `values`, rounded for a
    readable manifest; train on exactly these rounded numbers.

    By default (x - mean) / std. With `by_range`, the "mean" and "std" are the midpoint and
    half-width of the feature's range, mapping it onto [-1, 1]: features whose tails are many
    standard deviations long then still share a per-tensor int8 input range evenly.
    """
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    if by_range:
        low, high = flat.min(axis=0), flat.max(axis=0)
        centres, scales = (high + low) / 2, (high - low) / 2
    else:
        centres, scales = flat.mean(axis=0), flat.std(axis=0)
    return [
        {"resource": name, "mean": round(float(centre), 3), "std": round(float(scale), 3)}
        for name, centre, scale in zip(resources, centres, scales, strict=True)
    ]


def normalise(values: np.ndarray, features: list[dict]) -> np.ndarray:
    """What the service does to each row before inference: (x - mean) / std, in float32."""
    mean = np.array([f["mean"] for f in features], dtype=np.float32)
    std = np.array([f["std"] for f in features], dtype=np.float32)
    return (values.astype(np.float32) - mean) / std


def export_variants(
    name: str,
    model,
    calibration: np.ndarray,
    *,
    description: str,
    result_profile: str,
    window: int,
    features: list[dict],
    outputs: list[dict],
) -> None:
    """Write NAME.tflite (float32) and NAME_int8.tflite, each with its manifest; the int8
    model's manifest differs only in its name."""
    manifest = {
        "description": description,
        "resultProfile": result_profile,
        "inputs": {"window": window, "stride": 1, "features": features},
        "outputs": outputs,
    }
    convert_float(model, MODELS_DIR / f"{name}.tflite")
    write_manifest(name, manifest)
    convert_int8(model, calibration, MODELS_DIR / f"{name}_int8.tflite")
    write_manifest(f"{name}_int8", manifest)
