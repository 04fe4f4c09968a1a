"""The device profiles in profiles/ are ones core-metadata accepts, and agree with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app_service.manifest import load_manifest

from .edgex_rules import profile_problems
from .openapi_specs import request_body_errors, schema_errors

REPO = Path(__file__).resolve().parents[1]
PROFILE_FILES = sorted((REPO / "profiles").glob("*.yaml"))
PROFILES = {path.stem: yaml.safe_load(path.read_text()) for path in PROFILE_FILES}
SENSOR_PROFILES = ("Pump-Monitor", "Traffic-Sensor", "Patient-Monitor")
NUMERIC = ("Int", "Uint", "Float")
# model -> its sensor profile (None: device-virtual's, not ours) and result profile
MODELS = {
    "linear_regression": (None, "linear-regression-result"),
    **{
        name + variant: (sensor, result)
        for name, sensor, result in (
            ("pump_anomaly", "Pump-Monitor", "pump-anomaly-result"),
            ("traffic_forecast", "Traffic-Sensor", "traffic-forecast-result"),
            ("vitals_risk", "Patient-Monitor", "vitals-risk-result"),
        )
        for variant in ("", "_int8")
    },
}


def resources(profile_name: str) -> dict[str, dict]:
    return {r["name"]: r["properties"] for r in PROFILES[profile_name]["deviceResources"]}


def test_every_sensor_and_result_profile_is_there() -> None:
    expected = {*SENSOR_PROFILES, *(result for _, result in MODELS.values())}
    assert set(PROFILES) == expected


@pytest.mark.parametrize("name", PROFILES)
def test_core_metadata_accepts_profile(name: str) -> None:
    profile = PROFILES[name]
    assert profile["name"] == name, "the file is named after the profile"
    assert schema_errors("core-metadata", "DeviceProfile", profile) == []
    request = [{"apiVersion": "v3", "profile": profile}]
    assert request_body_errors("core-metadata", "POST", "/deviceprofile", request) == []
    assert profile_problems(profile) == []


@pytest.mark.parametrize("name", SENSOR_PROFILES)
def test_sensor_resources_have_units_and_range(name: str) -> None:
    for resource, properties in resources(name).items():
        if not properties["valueType"].startswith(NUMERIC):
            continue
        assert properties.get("units"), f"{name}.{resource} has no units"
        assert properties["minimum"] < properties["maximum"], f"{name}.{resource} range"
        if "defaultValue" in properties:
            assert properties["minimum"] <= float(properties["defaultValue"]) <= properties["maximum"]


@pytest.mark.parametrize("model", MODELS)
def test_result_profile_matches_manifest(model: str) -> None:
    path = REPO / "models" / f"{model}.yaml"
    if not path.exists():
        pytest.skip(f"models/{model}.yaml is not there yet")
    manifest = load_manifest(path)
    sensor, result = MODELS[model]
    assert manifest.result_profile == result
    outputs = resources(result)
    assert {o.name: o.value_type for o in manifest.outputs} == {
        name: properties["valueType"] for name, properties in outputs.items()
    }
    for output in manifest.outputs:
        if output.units:
            assert outputs[output.name].get("units") == output.units, f"{result}.{output.name} units"
    # result events carry the model name as sourceName: the profile has a command of that name
    commands = {c["name"]: c for c in PROFILES[result]["deviceCommands"]}
    assert model in commands, f"{result} has no deviceCommand {model}"
    assert {op["deviceResource"] for op in commands[model]["resourceOperations"]} == set(outputs)
    if sensor is not None:
        assert set(manifest.resources) <= set(resources(sensor)), f"{model} reads resources {sensor} lacks"
