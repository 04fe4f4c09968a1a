"""core-metadata: result profiles uploaded or updated, the device service, result devices."""

from __future__ import annotations

import copy

import yaml

from app_service.metadata import contains

from .deployment_helpers import config_dir
from .mqtt_helpers import REPO, RESULTS, device_topic, envelope, float_event

SERVICE_ID = "app-tflite-inference"
PUMP_RESULT = yaml.safe_load((REPO / "profiles" / "pump-anomaly-result.yaml").read_text())
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def with_pump_model(data: dict) -> None:
    data["Inference"]["Bindings"].append({"Model": "pump_anomaly", "DeviceName": "Pump-*"})


def writes(edgex) -> list[str]:
    return [f"{r.method} {r.path}" for r in edgex.requests
            if r.service == "core-metadata" and r.method in WRITES]


def test_uploads_result_profiles_and_creates_its_device_service(edgex, service, tmp_path):
    running = service(*config_dir(tmp_path, with_pump_model), env=edgex.env())
    edgex.wait_for(lambda r: (r.method, r.route) == ("POST", "/deviceservice"))
    assert sorted(edgex.profiles) == ["linear-regression-result", "pump-anomaly-result"]
    assert contains(edgex.profiles["pump-anomaly-result"], PUMP_RESULT)
    service_entry = edgex.device_services[SERVICE_ID]
    assert service_entry["adminState"] == "UNLOCKED"
    assert service_entry["baseAddress"] == f"http://localhost:{running.rest_port}"
    assert not edgex.devices  # CreateDevices is off by default


def test_updates_what_changed_and_writes_nothing_when_all_is_in_place(edgex, service, tmp_path):
    stale = copy.deepcopy(PUMP_RESULT)
    stale["description"] = "an older version"
    stale["deviceResources"].pop()
    stale["deviceCommands"] = []
    edgex.add_profile(stale)
    edgex.add_device_service(SERVICE_ID, "http://old-host:59741")
    args = config_dir(tmp_path, with_pump_model)

    first = service(*args, env=edgex.env())
    edgex.wait_for(lambda r: (r.method, r.route) == ("PATCH", "/deviceservice"))
    assert first.stop() == 0
    assert sorted(writes(edgex)) == ["PATCH /api/v3/deviceservice", "POST /api/v3/deviceprofile",
                                     "PUT /api/v3/deviceprofile"]
    assert contains(edgex.profiles["pump-anomaly-result"], PUMP_RESULT)
    assert edgex.device_services[SERVICE_ID]["baseAddress"] == f"http://localhost:{first.rest_port}"

    second = service(*args, env={**edgex.env(), "SERVICE_PORT": str(first.rest_port)})
    edgex.wait_for(lambda _: len(edgex.calls("core-metadata", "GET", "/deviceservice/name/{name}")) == 2)
    assert second.stop() == 0
    assert len(writes(edgex)) == 3  # the second start found everything in place


def test_creates_result_devices_it_does_not_know(edgex, service, peer, tmp_path):
    edgex.add_device("Known-Device", "Random-Float-Device")
    results = peer(RESULTS)
    args = config_dir(tmp_path, lambda data: data["Inference"]["Bindings"][0].update(DeviceName="*"))
    service(*args, env={**edgex.env(), "METADATA_CREATEDEVICES": "true"})
    device = peer()
    for name in ("New-Device", "New-Device", "Known-Device", "New-Device"):
        device.publish(device_topic(name, "Random-Float-Device", "Float32"),
                       envelope(float_event("1.0", device=name)))
    results.take(4)
    created = edgex.wait_for(lambda r: (r.method, r.route) == ("POST", "/device"))
    assert created.query == {"bypassValidation": "true"}
    new = edgex.devices["New-Device"]
    assert (new["serviceName"], new["profileName"]) == (SERVICE_ID, "linear-regression-result")
    assert edgex.devices["Known-Device"]["serviceName"] == "device-virtual"
    edgex.wait_for(lambda r: r.path == "/api/v3/device/name/Known-Device")
    assert len(edgex.calls("core-metadata", "POST", "/device")) == 1


def test_inference_goes_on_while_core_metadata_is_down(edgex, service, peer):
    edgex.outages["core-metadata"] = 500
    results = peer(RESULTS)
    running = service(env=edgex.env())
    edgex.wait_for(lambda r: r.service == "core-metadata")
    peer().publish(device_topic("Random-Float-Device", "Random-Float-Device", "Float32"),
                   envelope(float_event("1.0")))
    results.take(1)
    del edgex.outages["core-metadata"]
    edgex.wait_for(lambda r: (r.method, r.route, r.status) == ("POST", "/deviceservice", 207))
    assert "linear-regression-result" in edgex.profiles
    assert "retrying" in running.log


def test_contains_ignores_what_metadata_adds():
    stored = {"id": "x", "name": "p", "deviceResources": [
        {"name": "A", "isHidden": False, "attributes": None,
         "properties": {"valueType": "Float32", "readWrite": "R", "units": ""}}]}
    assert contains(stored, {"name": "p", "deviceResources": [
        {"name": "A", "properties": {"valueType": "Float32", "readWrite": "R"}}]})
    assert not contains(stored, {"name": "p", "deviceResources": [
        {"name": "A", "properties": {"valueType": "Bool", "readWrite": "R"}}]})
    assert not contains(stored, {"name": "p", "deviceResources": []})
