"""The EdgeX stand-in refuses what real EdgeX refuses, accepts what it accepts, and a refused
request fails the test that made it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .edgex_standin import EdgeXStandIn

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
API = "/api/v3"
RESULT_TOPIC_PATH = f"{API}/event/app-tflite-inference/pump-anomaly-result/Pump-01/pump_anomaly"


@pytest.fixture
def standin() -> Iterator[EdgeXStandIn]:
    # Not the `edgex` fixture: these tests make bad requests on purpose and check the violations.
    with EdgeXStandIn() as running:
        running.add_profile(PROFILES / "Pump-Monitor.yaml")
        running.add_device("Pump-01", "Pump-Monitor")
        yield running


def reading(resource: str = "AnomalyScore", value_type: str = "Float32", value: str = "1.5e-01") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "origin": 1733300000000000000,
        "deviceName": "Pump-01",
        "profileName": "pump-anomaly-result",
        "resourceName": resource,
        "valueType": value_type,
        "value": value,
    }


def add_event(**changes: Any) -> dict:
    event = {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": "Pump-01",
        "profileName": "pump-anomaly-result",
        "sourceName": "pump_anomaly",
        "origin": 1733300000000000000,
        "readings": [reading(), reading("Anomaly", "Bool", "false")],
    }
    event.update(changes)
    event = {k: v for k, v in event.items() if v is not None}
    return {"apiVersion": "v3", "requestId": str(uuid.uuid4()), "event": event}


def device(**changes: Any) -> list[dict]:
    body = {
        "name": "Pump-02",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "serviceName": "device-virtual",
        "profileName": "Pump-Monitor",
        "protocols": {"other": {}},
    }
    body.update(changes)
    return [{"apiVersion": "v3", "device": {k: v for k, v in body.items() if v is not None}}]


def registration(**health: str) -> dict:
    check = {"interval": "10s", "path": "/api/v3/ping", "type": "http", **health}
    return {
        "apiVersion": "v3",
        "registration": {"serviceId": "app-x", "host": "localhost", "port": 59741, "healthCheck": check},
    }


def upload(text: str) -> dict:
    return {"files": {"file": ("profile.yaml", text.encode())}}


BAD_PROFILE = """
name: Broken
deviceResources:
  - name: Level
    properties: {valueType: Float32, readWrite: R}
deviceCommands:
  - name: SetLevel
    readWrite: W
    resourceOperations: [{deviceResource: Level}]
"""


def consul_service(**changes: Any) -> dict:
    service = {
        "ID": "app-x",
        "Name": "app-x",
        "Port": 59741,
        "Check": {"HTTP": "http://h:59741/api/v3/ping", "Interval": "10s"},
    }
    service.update(changes)
    return {"json": {k: v for k, v in service.items() if v is not None}}


EVENT = RESULT_TOPIC_PATH
DEVICE = f"{API}/device?bypassValidation=true"
UPLOAD = f"{API}/deviceprofile/uploadfile"
SET_SPEED = f"{API}/device/name/Pump-01/SetMotorSpeed"
NO_SERVICE_BASE = [{"apiVersion": "v3", "service": {"name": "app-x", "adminState": "UNLOCKED"}}]

# what real EdgeX refuses: service, method, path, requests' kwargs, EdgeX's status, part of the violation
# fmt: off
REFUSED = {
    "event without readings": ("core-data", "POST", EVENT, {"json": add_event(readings=None)}, 400,
                               "'readings' is a required"),
    "event with no reading": ("core-data", "POST", EVENT, {"json": add_event(readings=[])}, 400,
                              "at least one reading"),
    "event path names another device": ("core-data", "POST", EVENT.replace("Pump-01", "Pump-09"),
                                        {"json": add_event()}, 400, "differs from the event's"),
    "reading value not of its type": ("core-data", "POST", EVENT,
                                      {"json": add_event(readings=[reading(value="high")])}, 400,
                                      "is not a Float32"),
    "reading without deviceName": ("core-data", "POST", EVENT,
                                   {"json": add_event(readings=[{**reading(), "deviceName": ""}])}, 400,
                                   "deviceName is missing"),
    "requestId not a UUID": ("core-data", "POST", EVENT, {"json": {**add_event(), "requestId": "42"}}, 400,
                             "is not a 'uuid'"),
    "request without apiVersion": ("core-data", "POST", EVENT, {"json": {"event": add_event()["event"]}}, 400,
                                   "'apiVersion' is a required"),
    "body not JSON": ("core-data", "POST", EVENT,
                      {"data": b"{oops", "headers": {"Content-Type": "application/json"}}, 400,
                      "cannot be parsed"),
    "query parameter of the wrong type": ("core-data", "GET", f"{API}/event/device/name/Pump-01?limit=ten",
                                          {}, 400, "not an integer"),
    "unknown path": ("core-data", "POST", f"{API}/events", {"json": add_event()}, 404, "has no route"),
    "path outside the API": ("core-data", "GET", "/ping", {}, 404, "outside /api/v3"),
    "method the path lacks": ("core-metadata", "DELETE", f"{API}/deviceprofile", {}, 405, "not allowed"),
    "device without serviceName": ("core-metadata", "POST", DEVICE, {"json": device(serviceName=None)}, 400,
                                   "'serviceName' is a required"),
    "device without bypassValidation": ("core-metadata", "POST", f"{API}/device", {"json": device()}, 400,
                                        "bypassValidation"),
    "device body not an array": ("core-metadata", "POST", DEVICE, {"json": device()[0]}, 400,
                                 "is not of type 'array'"),
    "profile command on a read-only resource": ("core-metadata", "POST", UPLOAD, upload(BAD_PROFILE), 400,
                                                "is W but resource 'Level' is R"),
    "profile with an unknown valueType": ("core-metadata", "POST", UPLOAD,
                                          upload(BAD_PROFILE.replace("Float32", "Float")), 400,
                                          "'Float' is not one of"),
    "upload without a file part": ("core-metadata", "POST", UPLOAD,
                                   {"files": {"profile": ("p.yaml", b"name: x")}}, 400, "no 'file' part"),
    "device service without baseAddress": ("core-metadata", "POST", f"{API}/deviceservice",
                                           {"json": NO_SERVICE_BASE}, 400, "'baseAddress' is a required"),
    "registration with a bad interval": ("core-keeper", "POST", f"{API}/registry",
                                         {"json": registration(interval="often")}, 400, "not a Go duration"),
    "registration without healthCheck type": ("core-keeper", "POST", f"{API}/registry",
                                              {"json": registration(type="")}, 400, "type is missing"),
    "key with an empty value": ("core-keeper", "PUT", f"{API}/kvs/key/edgex/v4/app-x?flatten=true",
                                {"json": {"value": {}}}, 400, "empty object"),
    "setting a read-only command": ("core-command", "PUT", f"{API}/device/name/Pump-01/PumpStatus",
                                    {"json": {"Vibration": "1"}}, 400, "read-only"),
    "setting a value not of its type": ("core-command", "PUT", SET_SPEED, {"json": {"MotorSpeed": "fast"}},
                                        400, "is not a Float32"),
    "setting a resource the command lacks": ("core-command", "PUT", SET_SPEED, {"json": {"Speed": "1"}}, 400,
                                             "has no resource Speed"),
    "setting a number, not a string": ("core-command", "PUT", SET_SPEED, {"json": {"MotorSpeed": 1}}, 400,
                                       "is not of type 'string'"),
    "consul check not on /api/v3/ping": ("consul", "PUT", "/v1/agent/service/register",
                                         consul_service(Check={"HTTP": "http://h:1/ping", "Interval": "1s"}),
                                         400, "ending /api/v3/ping"),
    "consul registration without Port": ("consul", "PUT", "/v1/agent/service/register",
                                         consul_service(Port=None), 400, "Port None"),
}
# fmt: on


@pytest.mark.parametrize("case", REFUSED)
def test_refuses_what_edgex_refuses(standin: EdgeXStandIn, case: str) -> None:
    service, method, path, kwargs, status, fragment = REFUSED[case]
    before = (len(standin.events), len(standin.devices), len(standin.profiles), len(standin.commands))

    response = requests.request(method, standin.url(service) + path, timeout=10, **kwargs)

    assert response.status_code == status
    if service != "consul":
        assert response.json()["apiVersion"] == "v3"
        assert response.json()["statusCode"] == status
    violations = standin.take_violations()
    assert any(fragment in v for v in violations), violations
    assert (len(standin.events), len(standin.devices), len(standin.profiles), len(standin.commands)) == before


def test_a_refused_request_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.edgex_fixtures"]\n')
    (tmp_path / "test_client.py").write_text(
        textwrap.dedent(
            """
            import requests

            def test_good_request(edgex):
                response = requests.get(edgex.url("core-data") + "/api/v3/event/count", timeout=10)
                assert response.status_code == 200

            def test_bad_request(edgex):
                body = {"apiVersion": "v3", "event": {"deviceName": "d"}}
                requests.post(edgex.url("core-data") + "/api/v3/event/s/p/d/x", json=body, timeout=10)
            """
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 passed, 1 error" in run.stdout, "the bad test errs at teardown"
    assert "ERROR at teardown of test_bad_request" in run.stdout
    assert "requests EdgeX would refuse" in run.stdout
    assert "'readings' is a required property" in run.stdout


def test_metadata_provisioning_is_stateful_and_idempotent(standin: EdgeXStandIn) -> None:
    metadata = standin.url("core-metadata") + API
    for path in sorted(PROFILES.glob("*-result.yaml")):
        profile = yaml.safe_load(path.read_text())
        first = requests.post(f"{metadata}/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}])
        again = requests.post(f"{metadata}/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}])
        assert first.status_code == again.status_code == 207
        assert first.json()[0]["statusCode"] == 201
        assert again.json()[0]["statusCode"] == 409
    for path in sorted(PROFILES.glob("[A-Z]*.yaml")):
        status = requests.post(f"{metadata}/deviceprofile/uploadfile", **upload(path.read_text())).status_code
        assert status == (409 if path.stem == "Pump-Monitor" else 201)
    changed = (PROFILES / "Pump-Monitor.yaml").read_text().replace("maximum: 3600", "maximum: 3000")
    assert requests.put(f"{metadata}/deviceprofile/uploadfile", **upload(changed)).status_code == 200
    speeds = {r["name"]: r for r in standin.profiles["Pump-Monitor"]["deviceResources"]}
    assert speeds["MotorSpeed"]["properties"]["maximum"] == 3000

    service = {"name": "app-x", "adminState": "UNLOCKED", "baseAddress": "http://localhost:59741"}
    created = requests.post(f"{metadata}/deviceservice", json=[{"apiVersion": "v3", "service": service}])
    assert created.json()[0]["statusCode"] == 201
    moved = {"name": "app-x", "baseAddress": "http://app-x:59741"}
    updated = requests.patch(f"{metadata}/deviceservice", json=[{"apiVersion": "v3", "service": moved}])
    assert updated.json()[0]["statusCode"] == 200
    assert (
        requests.get(f"{metadata}/deviceservice/name/app-x").json()["service"]["baseAddress"]
        == moved["baseAddress"]
    )

    result_device = device(name="Pump-01-result", serviceName="app-x", profileName="pump-anomaly-result")
    answers = [
        requests.post(f"{metadata}/device?bypassValidation=true", json=result_device) for _ in range(2)
    ]
    assert [a.json()[0]["statusCode"] for a in answers] == [201, 409]
    orphan = device(name="Pump-03", serviceName="nobody")
    assert (
        requests.post(f"{metadata}/device?bypassValidation=true", json=orphan).json()[0]["statusCode"] == 404
    )
    assert requests.get(f"{metadata}/device/name/Pump-01-result").json()["device"]["serviceName"] == "app-x"
    missing = requests.get(f"{metadata}/device/name/Pump-77")
    assert (missing.status_code, missing.json()["apiVersion"]) == (404, "v3")
    assert requests.delete(f"{metadata}/deviceservice/name/app-x").status_code == 409, "still has a device"
    assert standin.violations == []


def test_a_route_the_stand_in_lacks_fails_too(standin: EdgeXStandIn) -> None:
    path = f"{API}/deviceresource/profile/Pump-Monitor/resource/MotorSpeed"
    assert requests.get(standin.url("core-metadata") + path).status_code == 500
    assert standin.take_violations() == [
        f"core-metadata GET {path}: the stand-in does not implement "
        "GET /deviceresource/profile/{profileName}/resource/{resourceName}"
    ]


def test_core_data_stores_and_answers_events(standin: EdgeXStandIn) -> None:
    data = standin.url("core-data")
    body = add_event()
    created = requests.post(data + RESULT_TOPIC_PATH, json=body)
    assert created.status_code == 201
    assert created.json() == {
        "apiVersion": "v3",
        "statusCode": 201,
        "requestId": body["requestId"],
        "id": body["event"]["id"],
    }
    assert requests.post(data + RESULT_TOPIC_PATH, json=body).status_code == 409, "event ids are unique"
    events = requests.get(f"{data}{API}/event/device/name/Pump-01", params={"limit": -1}).json()
    assert body["event"] in events["events"]
    readings = requests.get(f"{data}{API}/reading/device/name/Pump-01/resourceName/Anomaly").json()
    assert readings["readings"][0]["value"] == "false"
    assert standin.calls("core-data", "POST", "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}")
    assert standin.violations == []


def test_core_command_lists_and_sets(standin: EdgeXStandIn) -> None:
    command = standin.url("core-command") + API
    listed = requests.get(f"{command}/device/name/Pump-01").json()["deviceCoreCommand"]["coreCommands"]
    offered = {c["name"]: (c["get"], c["set"]) for c in listed}
    assert offered["PumpStatus"] == (True, False)
    assert offered["SetMotorSpeed"] == (True, True)
    assert requests.put(f"{command}/device/name/Pump-01/SetMotorSpeed", json={"MotorSpeed": "1200"}).ok
    assert standin.commands[-1] == {
        "device": "Pump-01",
        "command": "SetMotorSpeed",
        "settings": {"MotorSpeed": "1200"},
    }
    assert (
        requests.put(f"{command}/device/name/Pump-77/SetMotorSpeed", json={"MotorSpeed": "1"}).status_code
        == 404
    )
    standin.outages["core-command"] = 503
    assert (
        requests.put(f"{command}/device/name/Pump-01/SetMotorSpeed", json={"MotorSpeed": "1"}).status_code
        == 503
    )
    del standin.outages["core-command"]
    assert standin.violations == []


def test_core_keeper_registry_and_configuration(standin: EdgeXStandIn) -> None:
    keeper = standin.url("core-keeper") + API
    assert requests.post(f"{keeper}/registry", json=registration()).status_code == 201
    assert requests.post(f"{keeper}/registry", json=registration()).status_code == 409
    assert requests.put(f"{keeper}/registry", json=registration(interval="1s")).status_code == 204
    assert (
        requests.get(f"{keeper}/registry/serviceId/app-x").json()["registration"]["healthCheck"]["interval"]
        == "1s"
    )
    assert requests.delete(f"{keeper}/registry/serviceId/app-x").status_code == 204
    assert standin.registrations["app-x"]["status"] == "HALT"

    standin.seed_kv(
        "edgex/v4/core-common-config-bootstrapper",
        {"IsCommonConfigReady": True, "all-services": {"MessageBus": {"Host": "broker", "Port": 1883}}},
    )
    keys = requests.get(f"{keeper}/kvs/key/edgex/v4/core-common-config-bootstrapper/all-services").json()
    assert {kv["key"]: base64.b64decode(kv["value"]).decode() for kv in keys["response"]} == {
        "edgex/v4/core-common-config-bootstrapper/all-services/MessageBus/Host": "broker",
        "edgex/v4/core-common-config-bootstrapper/all-services/MessageBus/Port": "1883",
    }
    ready = requests.get(
        f"{keeper}/kvs/key/edgex%2Fv4%2Fcore-common-config-bootstrapper%2FIsCommonConfigReady",
        params={"plaintext": "true"},
    ).json()
    assert ready["response"][0]["value"] == "true"
    seeded = requests.put(
        f"{keeper}/kvs/key/edgex/v4/app-x?flatten=true", json={"value": {"Writable": {"LogLevel": "INFO"}}}
    )
    assert seeded.json()["response"] == ["edgex/v4/app-x/Writable/LogLevel"]
    assert requests.get(f"{keeper}/kvs/key/edgex/v4/app-y").status_code == 404
    assert standin.violations == []


def test_consul_registry_and_configuration(standin: EdgeXStandIn) -> None:
    consul = standin.url("consul")
    assert requests.put(f"{consul}/v1/agent/service/register", **consul_service()).ok
    assert standin.consul_services["app-x"]["Port"] == 59741
    assert requests.put(f"{consul}/v1/kv/edgex/v3/app-x/Writable/LogLevel", data=b"DEBUG").ok
    listed = requests.get(f"{consul}/v1/kv/edgex/v3/app-x", params={"recurse": "true"}).json()
    assert [(kv["Key"], base64.b64decode(kv["Value"])) for kv in listed] == [
        ("edgex/v3/app-x/Writable/LogLevel", b"DEBUG")
    ]
    assert requests.get(f"{consul}/v1/kv/edgex/v3/app-y", params={"recurse": "true"}).status_code == 404
    assert requests.put(f"{consul}/v1/agent/service/deregister/app-x").ok
    assert "app-x" not in standin.consul_services
    assert standin.violations == []


def test_wait_for_returns_the_matching_request(standin: EdgeXStandIn) -> None:
    requests.get(standin.url("core-metadata") + f"{API}/ping")
    seen = standin.wait_for(lambda r: r.service == "core-metadata" and r.route == "/ping")
    assert seen.status == 200


def test_env_points_clients_at_the_stand_in(standin: EdgeXStandIn) -> None:
    env = standin.env()
    assert env["CLIENTS_CORE_DATA_PORT"] == str(standin.port("core-data"))
    assert env["CLIENTS_CORE_METADATA_HOST"] == "127.0.0.1"
    assert standin.keeper_provider == f"keeper.http://127.0.0.1:{standin.port('core-keeper')}"
