"""Actuation: rules on model outputs that command devices, by core-command REST or the MessageBus."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from app_service.actuation import Condition, build_rule, parse_condition
from app_service.config import Actuation, ConfigError
from app_service.dtos import Event, Reading
from app_service.manifest import load_manifest

from .deployment_helpers import config_dir, metric, wait_for_metric
from .mqtt_helpers import REPO, RESULTS, device_topic, envelope, float_event

MANIFESTS = {name: load_manifest(REPO / "models" / f"{name}.yaml")
             for name in ("linear_regression", "pump_anomaly", "pump_anomaly_int8")}
FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")
ACTUATIONS = "app_tflite_actuations_total"


def rule_config(**fields) -> Actuation:
    return Actuation(**{"name": "r", "model": "pump_anomaly*", "when": "Anomaly == true",
                        "command": "SetMotorSpeed", **fields})


def result(device: str, **values: tuple[str, str]) -> Event:
    return Event(device_name=device, profile_name="pump-anomaly-result", source_name="pump_anomaly",
                 readings=[Reading(resource_name=name, value_type=value_type, value=value)
                           for name, (value_type, value) in values.items()])


@pytest.mark.parametrize("text, expected", [
    ("Anomaly == true", Condition("Anomaly", "==", True)),
    ("AnomalyScore>0.8", Condition("AnomalyScore", ">", 0.8)),
    ("  Score <= -1e3 ", Condition("Score", "<=", -1000.0)),
    ('Class != "worn"', Condition("Class", "!=", "worn")),
    ("Class == broken", Condition("Class", "==", "broken")),
])
def test_conditions(text, expected):
    assert parse_condition(text) == expected


@pytest.mark.parametrize("text, problem", [
    ("Anomaly", "RESOURCE OP VALUE"),
    ("Anomaly = true", "RESOURCE OP VALUE"),
    ("__import__('os') == 1", "RESOURCE OP VALUE"),
    ("Anomaly > true", "only numbers can be ordered"),
    ("Class >= worn", "only numbers can be ordered"),
])
def test_bad_conditions_name_the_key(text, problem):
    with pytest.raises(ConfigError, match=rf"When: .*{problem}"):
        parse_condition(text, "When")


def test_condition_on_readings():
    score = parse_condition("AnomalyScore > 0.8")
    assert score.holds(Reading(value_type="Float32", value="9.0e-01"))
    assert not score.holds(Reading(value_type="Float32", value="0.8"))
    assert not score.holds(Reading(value_type="Float32", value="NaN"))
    assert parse_condition("Anomaly != false").holds(Reading(value_type="Bool", value="true"))


@pytest.mark.parametrize("fields, problem", [
    ({"model": "traffic*"}, "Model: 'traffic\\*' matches no loaded model"),
    ({"when": "Vibration > 1"}, "When: model pump_anomaly has no output 'Vibration'"),
    ({"when": "Anomaly > 0.5"}, "When: output Anomaly of pump_anomaly is Bool"),
    ({"when": "AnomalyScore == true"}, "When: output AnomalyScore of pump_anomaly is Float32"),
    ({"via": "carrier-pigeon"}, "Via: 'carrier-pigeon'"),
    ({"consecutive": 0}, "Consecutive: must be at least 1"),
    ({"cooldown": "a while"}, "Cooldown: 'a while' is not a duration"),
])
def test_rules_are_checked_against_the_models(fields, problem):
    with pytest.raises(ConfigError, match=r"Actuations\[0\] \(r\)\." + problem):
        build_rule(rule_config(**fields), 0, MANIFESTS)


def test_consecutive_results_per_device_and_cooldown():
    rule = build_rule(rule_config(consecutive=2, cooldown="60s", device="{device}-controller"),
                      0, MANIFESTS)
    anomaly, normal = {"Anomaly": ("Bool", "true")}, {"Anomaly": ("Bool", "false")}
    steps = [  # (seconds, device, readings, fires)
        (0, "Pump-01", anomaly, None),
        (1, "Pump-02", anomaly, None),
        (2, "Pump-01", normal, None),  # breaks Pump-01's streak
        (3, "Pump-01", anomaly, None),
        (4, "Pump-01", anomaly, "Pump-01-controller"),
        (5, "Pump-02", anomaly, "Pump-02-controller"),
        (6, "Pump-01", anomaly, None),
        (7, "Pump-01", anomaly, None),  # two in a row again, but within the cooldown
        (70, "Pump-01", anomaly, None),
        (71, "Pump-01", anomaly, "Pump-01-controller"),
        (72, "Pump-01", {"AnomalyScore": ("Float32", "1.0")}, None),  # not about this rule
    ]
    for now, device, readings, fires in steps:
        assert rule.observe(result(device, **readings), now) == fires, (now, device)


def actuation_config(*rules: dict):
    def change(data: dict) -> None:
        data["Actuations"] = list(rules)
    return change


def test_rest_actuation_with_counters(edgex, service, peer, tmp_path):
    edgex.add_profile(REPO / "profiles" / "Pump-Monitor.yaml")
    edgex.add_device("Pump-01", "Pump-Monitor")
    stop_pump = {"Name": "stop-pump", "Model": "linear_regression", "When": "Prediction > 5",
                 "Consecutive": 2, "Cooldown": "1h", "Device": "Pump-01",
                 "Command": "SetMotorSpeed", "Settings": {"MotorSpeed": "0"}, "Via": "rest"}
    unknown = {**stop_pump, "Name": "unknown-device", "Consecutive": 1, "Cooldown": "0s",
               "Device": "{device}"}
    results = peer(RESULTS)
    running = service(*config_dir(tmp_path, actuation_config(stop_pump, unknown)),
                      env={**edgex.env(), "METADATA_ENABLED": "false"})
    device = peer()
    values = ("5.0", "5.0", "5.0", "0.0", "5.0", "5.0")  # predictions are about 2x
    for value in values:
        device.publish(FLOAT_TOPIC, envelope(float_event(value)))
    results.take(len(values))
    # one command queue: once the last failure is counted, every earlier command was sent
    wait_for_metric(running, ACTUATIONS, 5, rule="unknown-device", outcome="failure")
    assert metric(running, ACTUATIONS, rule="stop-pump", outcome="success") == 1
    assert metric(running, ACTUATIONS, rule="stop-pump", outcome="failure") == 0
    assert metric(running, "app_tflite_actuation_latency_seconds_count", rule="stop-pump") == 1
    assert edgex.commands == [
        {"device": "Pump-01", "command": "SetMotorSpeed", "settings": {"MotorSpeed": "0"}}]
    assert "actuation stop-pump: SetMotorSpeed {'MotorSpeed': '0'} on Pump-01 succeeded" in running.log
    assert "device Random-Float-Device does not exist" in running.log


def answer(request: dict, error: str | None = None) -> bytes:
    """core-command's answer to a command request, as a MessageEnvelope."""
    payload = {"apiVersion": "v3", "statusCode": 200}
    return json.dumps({
        "apiVersion": "v3", "receivedTopic": "", "correlationID": request["correlationID"],
        "requestID": request["requestID"], "errorCode": 1 if error else 0,
        "payload": base64.b64encode(error.encode() if error else json.dumps(payload).encode()).decode(),
        "contentType": "text/plain" if error else "application/json",
    }).encode()


def test_messagebus_actuation_with_counters(service, peer, tmp_path):
    rule = {"Name": "write-back", "Model": "linear_regression", "When": "Prediction >= 0",
            "Device": "{device}", "Command": "WriteFloat32Value", "Settings": {"Float32": "1.5"},
            "Via": "messagebus", "Timeout": "1s"}
    core_command = peer("edgex/core/command/request/#")
    running = service(*config_dir(tmp_path, actuation_config(rule)), env={"METADATA_ENABLED": "false"})
    device = peer()

    def next_request() -> tuple[dict, str]:
        device.publish(FLOAT_TOPIC, envelope(float_event("1.0")))
        (message,) = core_command.take(1)
        assert message.topic == "edgex/core/command/request/Random-Float-Device/WriteFloat32Value/set"
        request = json.loads(message.payload)
        uuid.UUID(request["requestID"])
        assert request["apiVersion"] == "v3" and request["payload"] == {"Float32": "1.5"}
        return request, f"edgex/response/core-command/{request['requestID']}"

    request, reply_to = next_request()
    core_command.publish(reply_to, answer(request))
    wait_for_metric(running, ACTUATIONS, 1, rule="write-back", outcome="success")

    request, reply_to = next_request()
    core_command.publish(reply_to, answer(request, error="device Random-Float-Device is locked"))
    wait_for_metric(running, ACTUATIONS, 1, rule="write-back", outcome="failure")
    assert "errorCode 1: device Random-Float-Device is locked" in running.log

    next_request()  # nobody answers
    wait_for_metric(running, ACTUATIONS, 2, rule="write-back", outcome="failure")
    assert "no answer from core-command" in running.log
    assert metric(running, "app_tflite_actuation_latency_seconds_count", rule="write-back") == 3


def test_bad_rule_stops_the_start_with_a_clear_error(service, tmp_path):
    rule = {"Name": "bad", "Model": "linear_regression", "When": "Prediction ~ 1", "Command": "X"}
    running = service(*config_dir(tmp_path, actuation_config(rule)), wait=None)
    assert running.process.wait(30) == 1
    assert "Actuations[0] (bad).When: 'Prediction ~ 1' is not RESOURCE OP VALUE" in running.log
