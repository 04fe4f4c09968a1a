"""TensorFlow-side helpers shared by the training scripts: seeding, TFLite export, manifests."""

import contextlib
import io
import os
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
    # The converter prints a SavedModel summary on stdout; keep the training log readable.
    with contextlib.redirect_stdout(io.StringIO()):
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
