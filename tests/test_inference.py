"""Binding models to events: routing, per-device windows, stride, output post-processing."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
import yaml

from app_service.config import Binding, Inference
from app_service.dtos import AddEventRequest, Event
from app_service.inference import BindingError, InputError, ModelSet
from app_service.manifest import ManifestError, load_manifest

from .mqtt_helpers import REPO, device_event, float_event

MODELS = REPO / "models"


def event(request: dict) -> Event:
    return msgspec.convert(request, AddEventRequest).event


def pump_event(device: str, vibration: float = 2.1, temperature: float = 58.0) -> Event:
    return event(device_event(device, "Pump-Monitor", "PumpStatus", {
        "Vibration": ("Float32", f"{vibration:e}"), "Temperature": ("Float32", f"{temperature:e}")}))


def models(*bindings: Binding, models_dir: Path = MODELS) -> ModelSet:
    return ModelSet(Inference(models_dir=str(models_dir), bindings=list(bindings)))


def test_routes_by_device_profile_and_source_globs():
    bound = models(Binding(model="linear_regression", device_name="Random-*",
                           profile_name="Random-Float-Device", source_name="Float32"))
    assert len(list(bound.infer(event(float_event("1.0"))))) == 1
    assert list(bound.infer(event(float_event("1.0", device="Other")))) == []
    wrong_source = device_event("Random-Float-Device", "Random-Float-Device", "Float64",
                                {"Float64": ("Float64", "1.0")})
    assert list(bound.infer(event(wrong_source))) == []


def test_windows_are_per_device_and_respect_stride():
    pump = models(Binding(model="pump_anomaly", profile_name="Pump-Monitor"))
    window = pump.models["pump_anomaly"].manifest.inputs.window
    for _ in range(window - 1):
        assert list(pump.infer(pump_event("Pump-01"))) == []
        assert list(pump.infer(pump_event("Pump-02"))) == []
    (result,) = pump.infer(pump_event("Pump-01"))
    assert result.device_name == "Pump-01" and result.profile_name == "pump-anomaly-result"
    assert [r.resource_name for r in result.readings] == ["AnomalyScore", "Anomaly"]
    assert [r.value_type for r in result.readings] == ["Float32", "Bool"]
    assert result.readings[1].value == "false"
    assert len(list(pump.infer(pump_event("Pump-02")))) == 1
    assert len(list(pump.infer(pump_event("Pump-01")))) == 1  # stride 1: every event after


def test_anomalous_window_is_flagged():
    pump = models(Binding(model="pump_anomaly"))
    results = [r for _ in range(32) for r in pump.infer(pump_event("P", 9.0, 95.0))]
    assert results[-1].readings[1].value == "true"


def test_resources_override_and_missing_resources():
    bound = models(Binding(model="linear_regression", resources=["Temperature"]))
    reading = device_event("Thermo", "T", "Temperature", {"Temperature": ("Float64", "4")})
    (result,) = bound.infer(event(reading))
    assert abs(float(result.readings[0].value) - 8) < 0.5
    assert list(bound.infer(event(float_event("1.0")))) == []  # no Temperature reading
    with pytest.raises(BindingError, match="Resources lists 2 names"):
        models(Binding(model="linear_regression", resources=["A", "B"]))


def test_bad_value_names_device_and_resource():
    bound = models(Binding(model="linear_regression"))
    with pytest.raises(InputError, match=r"'Random-Float-Device'.*'Float32'"):
        list(bound.infer(event(float_event("NaN"))))


@pytest.fixture
def custom_model(tmp_path: Path) -> Path:
    """The linear regression with a manifest that exercises every kind of output."""
    shutil.copy(MODELS / "linear_regression.tflite", tmp_path / "custom.tflite")
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump({
        "name": "custom", "resultProfile": "custom-result",
        "inputs": {"window": 3, "stride": 2, "features": [{"resource": "X", "mean": 1, "std": 2}]},
        "outputs": [
            {"name": "Raw", "index": 0},
            {"name": "Scaled", "index": 0, "scale": 10, "offset": 1, "units": "cm"},
            {"name": "High", "index": 0, "threshold": 5},
            {"name": "Label", "labels": ["only"]},
            {"name": "All"},
        ],
    }))
    return tmp_path


def test_output_post_processing(custom_model: Path):
    # window 3 feeds 3 values to a model taking 1: the shape check must say so
    bound = models(Binding(model="custom"), models_dir=custom_model)
    x = event(device_event("D", "P", "S", {"X": ("Float32", "5")}))
    assert list(bound.infer(x)) == [] and list(bound.infer(x)) == []
    with pytest.raises(InputError, match="takes 1 values"):
        list(bound.infer(x))


def test_output_kinds(custom_model: Path):
    manifest = yaml.safe_load((custom_model / "custom.yaml").read_text())
    manifest["inputs"] |= {"window": 1, "stride": 1}
    (custom_model / "custom.yaml").write_text(yaml.safe_dump(manifest))
    bound = models(Binding(model="custom"), models_dir=custom_model)
    (result,) = bound.infer(event(device_event("D", "P", "S", {"X": ("Float32", "5")})))
    values = {r.resource_name: (r.value_type, r.value, r.units) for r in result.readings}
    raw = float(values["Raw"][1])  # model(2.0): x normalised (5 - 1) / 2
    assert abs(raw - 4) < 0.5
    assert values["Scaled"][0] == "Float32" and values["Scaled"][2] == "cm"
    assert float(values["Scaled"][1]) == pytest.approx(raw * 10 + 1, rel=1e-5)
    assert values["High"][:2] == ("Bool", "false")
    assert values["Label"][:2] == ("String", "only")
    assert values["All"][0] == "Float32Array" and values["All"][1].startswith("[")


def test_reload_swaps_the_model_and_keeps_the_old_on_failure(custom_model: Path):
    bound = models(Binding(model="custom"), models_dir=custom_model)
    before = bound.models["custom"].model.version
    (custom_model / "custom.tflite").write_bytes(b"broken")
    with pytest.raises(Exception, match=r"custom\.tflite"):
        bound.reload("custom")
    assert bound.models["custom"].model.version == before
    shutil.copy(MODELS / "pump_anomaly.tflite", custom_model / "custom.tflite")
    bound.reload("custom")
    assert bound.models["custom"].model.version != before


@pytest.mark.parametrize("change, problem", [
    ({"name": "other"}, "differs from the file name"),
    ({"outputs": []}, "outputs is empty"),
    ({"inputs": {"features": [{"resource": "X", "std": 0}]}}, "std is 0"),
    ({"inputs": {"features": [], "window": 0}}, "features is empty"),
    ({"extra": 1}, "unknown field"),
])
def test_manifest_problems_are_named(custom_model: Path, change: dict, problem: str):
    path = custom_model / "custom.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | change))
    with pytest.raises(ManifestError, match=problem):
        load_manifest(path)


def test_reload_starts_windows_afresh():
    pump = models(Binding(model="pump_anomaly"))
    for _ in range(10):
        list(pump.infer(pump_event("Pump-01")))
    pump.reload("pump_anomaly")
    assert pump.bound[0].windows == {}
    window = pump.models["pump_anomaly"].manifest.inputs.window
    assert sum(len(list(pump.infer(pump_event("Pump-01")))) for _ in range(window)) == 1
