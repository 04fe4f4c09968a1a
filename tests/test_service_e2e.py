"""The service as a user runs it: a real process, a real broker, device-virtual-like events."""

from __future__ import annotations

import base64
import json
import signal

import cbor2
import requests

from .mqtt_helpers import RESULTS, device_event, device_topic, envelope, float_event, payload_of
from .openapi_specs import schema_errors

FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")


def check_result(message, source_event: dict) -> float:
    request = payload_of(message)
    assert schema_errors("core-data", "AddEventRequest", request) == []
    event = request["event"]
    # core-data stores an event only when the topic's last three levels name it
    assert message.topic.split("/")[-3:] == [event["profileName"], event["deviceName"],
                                             event["sourceName"]]
    assert message.topic.startswith("edgex/events/device/app-tflite-inference/")
    assert event["deviceName"] == source_event["event"]["deviceName"]
    assert event["profileName"] == "linear-regression-result"
    assert event["sourceName"] == "linear_regression"
    assert event["tags"]["sourceEventId"] == source_event["event"]["id"]
    assert event["tags"]["model"] == "linear_regression"
    assert len(event["tags"]["modelVersion"]) == 12
    assert event["tags"]["inferenceLatencyUs"] >= 0
    (reading,) = event["readings"]
    assert reading["resourceName"] == "Prediction"
    assert reading["valueType"] == "Float32"
    return float(reading["value"])


def test_4x_and_3x_events_get_predictions(service, peer):
    results = peer(RESULTS)
    service()
    device = peer()
    for base64_payload in (False, True):
        request = float_event("5.000000e+00")
        device.publish(FLOAT_TOPIC, envelope(request, base64_payload=base64_payload))
        (message,) = results.take(1)
        assert abs(check_result(message, request) - 10) < 0.5


def test_cbor_payload_and_cbor_envelope(service, peer):
    results = peer(RESULTS)
    service()
    device = peer()
    request = float_event("2.5e+00")
    cbor_payload = json.dumps({
        "apiVersion": "v3", "correlationID": "c", "requestID": "", "errorCode": 0,
        "payload": base64.b64encode(cbor2.dumps(request)).decode(), "contentType": "application/cbor",
    })
    device.publish(FLOAT_TOPIC, cbor_payload)
    cbor_envelope = cbor2.dumps({"apiVersion": "v3", "correlationID": "c", "errorCode": 0,
                                 "payload": json.dumps(request).encode(),
                                 "contentType": "application/json"})
    device.publish(FLOAT_TOPIC, cbor_envelope)
    for message in results.take(2):
        assert abs(check_result(message, request) - 5) < 0.5


def test_keeps_answering_after_malformed_messages(service, peer):
    results = peer(RESULTS)
    running = service()
    device = peer()
    good = float_event("1.0")
    bad_messages = [
        b"{not json", b"", b"\xff\xfe garbage", b"[]", b'{"payload": 42}',
        envelope({"apiVersion": "v3", "event": {"deviceName": "x"}}),
        b'{"apiVersion":"v3","payload":"%%%not-base64","contentType":"application/json"}',
        envelope(float_event("not-a-number")),
        envelope(float_event("NaN")),
        envelope(float_event("+Inf")),
        envelope(device_event("Random-Float-Device", "Random-Float-Device", "Float32",
                              {"Float32": ("String", "hello")})),
        envelope(float_event("1.0") | {"event": {"deviceName": "D", "readings": []}}),
        b'{"apiVersion":"v3","errorCode":1,"payload":"c29tZXRoaW5nIGJyb2tl","contentType":"text/plain"}',
        envelope(float_event("1.0" + " " * (1 << 20))),  # over Inference.MaxMessageSize
    ]
    for i in range(100):
        device.publish(FLOAT_TOPIC, bad_messages[i % len(bad_messages)])
    device.publish(FLOAT_TOPIC, envelope(good))
    (message,) = results.take(1)
    assert abs(check_result(message, good) - 2) < 0.5
    assert running.process.poll() is None
    metrics = requests.get(f"http://127.0.0.1:{running.rest_port}/metrics", timeout=5).text
    rejected = {line.split("reason=")[1].split('"')[1]: float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("app_tflite_invalid_messages_total{")}
    assert sum(rejected.values()) == 100
    assert set(rejected) == {"malformed", "bad-value", "oversized"}
    assert "dropped message on " + FLOAT_TOPIC in running.log
    # one line per few seconds, not one per bad message
    assert running.log.count("dropped message") < 10


def test_ignores_other_devices_and_its_own_results(service, peer):
    results = peer(RESULTS)
    service(env={"TRIGGER_SUBSCRIBETOPICS": "events/#"})
    device = peer()
    device.publish(device_topic("Other", "Random-Float-Device", "Float32"),
                   envelope(float_event("1.0", device="Other")))
    request = float_event("3.0")
    device.publish(FLOAT_TOPIC, envelope(request))
    (message,) = results.take(1)
    assert message.topic.endswith("/Random-Float-Device/linear_regression")
    # the service hears its own result on events/#; it must not answer it again
    results.assert_silent()


def test_publish_topic_gets_a_copy(service, peer):
    copies = peer("edgex/inference-results")
    service(env={"TRIGGER_PUBLISHTOPIC": "inference-results"})
    peer().publish(FLOAT_TOPIC, envelope(float_event("4.0")))
    (message,) = copies.take(1)
    assert payload_of(message)["event"]["readings"][0]["resourceName"] == "Prediction"


def test_stops_cleanly_on_sigint(service):
    running = service()
    assert running.stop(signal.SIGINT) == 0
    assert "stopped" in running.log


def test_missing_model_fails_the_start(service, tmp_path):
    running = service(env={"INFERENCE_MODELSDIR": str(tmp_path)}, wait=None)
    assert running.process.wait(30) == 1
    assert "linear_regression.yaml" in running.log and "cannot start" in running.log


def test_bad_config_value_names_the_key(service):
    running = service(env={"MESSAGEBUS_PORT": "eighteen"}, wait=None)
    assert running.process.wait(30) == 1
    assert "MessageBus.Port" in running.log
