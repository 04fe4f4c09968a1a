"""The shipped models: manifests, both runtimes, float vs int8, as the service runs them.

Inputs are fixed seeded windows from the synthetic generator (one device with one fault),
normalised by the manifest the way the service does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from app_service.manifest import load_manifest
from app_service.synthetic import (
    PumpSignal,
    Signal,
    TrafficSignal,
    VitalsSignal,
    record,
    sliding_windows,
)
from app_service.tflite import BACKENDS, TFLiteModel

from .mqtt_helpers import REPO

MODELS = REPO / "models"
ALL = sorted(path.stem for path in MODELS.glob("*.tflite"))


@dataclass(frozen=True)
class Tolerance:
    """How far an int8 model's first output may stray (in output units), as the cards state."""

    float_mean: float  # mean |int8 - float| over the windows
    float_max: float  # max |int8 - float|
    runtimes_max: float  # max |ai-edge-litert - tflite-runtime| for the int8 model


APPLICATIONS: dict[str, tuple[type[Signal], Tolerance]] = {
    # The int8 score saturates near 0.7 on strong faults, far above the threshold.
    "pump_anomaly": (PumpSignal, Tolerance(float_mean=0.08, float_max=0.5, runtimes_max=0.05)),
    "traffic_forecast": (TrafficSignal, Tolerance(float_mean=1.0, float_max=10.0, runtimes_max=3.0)),
    "vitals_risk": (VitalsSignal, Tolerance(float_mean=0.01, float_max=0.05, runtimes_max=0.02)),
}


@cache
def windows(application: str) -> np.ndarray:
    """Every other window of a held-out device's 600 samples, a fault at samples 300-419."""
    signal, _ = APPLICATIONS[application]
    manifest = load_manifest(MODELS / f"{application}.yaml")
    values, _ = record(signal(seed=7, faults=[(300, 420)]), 600)
    return (sliding_windows(values, manifest.inputs.window)[::2] - manifest.mean) / manifest.std


@cache
def outputs(name: str, runtime: str) -> dict[str, np.ndarray]:
    """Each manifest output's value (before thresholds) on `windows`, as the service reads it."""
    manifest = load_manifest(MODELS / f"{name}.yaml")
    model = TFLiteModel(MODELS / f"{name}.tflite", runtime=runtime)
    results = [model.run(x) for x in windows(name.removesuffix("_int8"))]
    return {
        o.name: np.array([r[o.tensor].ravel()[o.index] for r in results]) * o.scale + o.offset
        for o in manifest.outputs
    }


def decisions(name: str, runtime: str) -> dict[str, np.ndarray]:
    manifest = load_manifest(MODELS / f"{name}.yaml")
    values = outputs(name, runtime)
    return {o.name: values[o.name] > o.threshold for o in manifest.outputs if o.threshold is not None}


def test_every_model_has_its_manifest_and_variants():
    assert {"linear_regression", *APPLICATIONS} <= set(ALL)
    for name in ALL:
        assert load_manifest(MODELS / f"{name}.yaml").name == name
    for application in APPLICATIONS:
        assert f"{application}_int8" in ALL
        full = load_manifest(MODELS / f"{application}.yaml")
        int8 = load_manifest(MODELS / f"{application}_int8.yaml")
        assert (full.inputs, full.outputs, full.result_profile) == (
            int8.inputs, int8.outputs, int8.result_profile
        )


@pytest.mark.parametrize("name", ALL)
def test_model_runs(name: str, runtime: str):
    model = TFLiteModel(MODELS / f"{name}.tflite", runtime=runtime)
    manifest = load_manifest(MODELS / f"{name}.yaml")
    (spec,) = model.inputs
    assert spec.size == manifest.inputs.window * len(manifest.inputs.features)
    assert (spec.dtype == np.int8) == name.endswith("_int8")
    if name == "linear_regression":
        return
    for values in outputs(name, runtime).values():
        assert values.shape == (len(windows(name.removesuffix("_int8"))),)
        assert np.isfinite(values).all()


def test_linear_regression_learned_y_equals_2x(runtime: str):
    model = TFLiteModel(MODELS / "linear_regression.tflite", runtime=runtime)
    (prediction,) = model.run(np.array([5.0]))
    assert abs(float(prediction.ravel()[0]) - 10) < 0.5


@pytest.mark.parametrize("application", APPLICATIONS)
def test_int8_follows_float(application: str, runtime: str):
    _, tolerance = APPLICATIONS[application]
    full, int8 = outputs(application, runtime), outputs(f"{application}_int8", runtime)
    first = next(iter(full))
    diff = np.abs(full[first] - int8[first])
    assert diff.mean() <= tolerance.float_mean and diff.max() <= tolerance.float_max
    int8_decisions = decisions(f"{application}_int8", runtime)
    for output, decided in decisions(application, runtime).items():
        assert (decided == int8_decisions[output]).all(), output


@pytest.mark.parametrize("application", ["pump_anomaly", "vitals_risk"])
def test_detectors_see_the_fault(application: str):
    """The fault at samples 300-419 raises the alarm, and nothing else does."""
    (alarm,) = decisions(application, BACKENDS[0]).values()
    window = load_manifest(MODELS / f"{application}.yaml").inputs.window
    newest = np.arange(window - 1, 600, 2)[: len(alarm)]  # newest sample of each window
    assert alarm[(newest >= 310) & (newest < 410)].mean() > 0.9
    assert not alarm[(newest < 300) | (newest >= 420 + window)].any()


@pytest.mark.parametrize("name", ALL)
def test_runtimes_agree(name: str, both_runtimes: tuple[str, ...]):
    if name == "linear_regression":
        x = np.array([3.0])
        results = [TFLiteModel(MODELS / f"{name}.tflite", runtime=b).run(x)[0] for b in both_runtimes]
        np.testing.assert_allclose(*results, rtol=1e-5)
        return
    first, second = (outputs(name, backend) for backend in both_runtimes)
    for output in first:
        if name.endswith("_int8"):
            _, tolerance = APPLICATIONS[name.removesuffix("_int8")]
            assert np.abs(first[output] - second[output]).max() <= tolerance.runtimes_max, output
        else:
            np.testing.assert_allclose(first[output], second[output], rtol=1e-4, atol=1e-4)
    first, second = (decisions(name, backend) for backend in both_runtimes)
    for output in first:
        assert (first[output] == second[output]).all(), output
