"""EdgeX wire forms in and out, as WIRE.md describes them for 3.1 and 4.0."""

from __future__ import annotations

import base64
import json

import cbor2
import msgspec
import numpy as np
import pytest

from app_service.codec import DecodeError, decode_event, encode_event_envelope
from app_service.dtos import Event, Reading
from app_service.readings import ReadingError, parse_value
from app_service.topics import escape_level, event_topic, publisher_of, subscriptions

from .mqtt_helpers import device_event, envelope
from .openapi_specs import schema_errors

WIRE_EXAMPLE_4X = {
    "apiVersion": "v3", "receivedTopic": "", "correlationID": "c0a8b7e6-1d2c-4b3a-9f8e-7d6c5b4a3f2e",
    "requestID": "", "errorCode": 0, "contentType": "application/json",
    "payload": {
        "apiVersion": "v3", "requestId": "5d0e4a1c-6f7e-4a52-9b1e-3f3a0f1d2c11",
        "event": {
            "apiVersion": "v3", "id": "2f1c9a8e-6a55-4a31-8f0e-1f8d2e3b4c5d",
            "deviceName": "Random-Float-Device", "profileName": "Random-Float-Device",
            "sourceName": "Float32", "origin": 1733300000000000000,
            "readings": [{
                "id": "8a6b2c1d-0e9f-4a8b-b7c6-d5e4f3a2b1c0", "origin": 1733300000000000000,
                "deviceName": "Random-Float-Device", "resourceName": "Float32",
                "profileName": "Random-Float-Device", "valueType": "Float32",
                "value": "1.234500e+01",
            }],
        },
    },
}
REQUEST = WIRE_EXAMPLE_4X["payload"]


def check_example(request) -> None:
    assert request.event.device_name == "Random-Float-Device"
    assert request.event.id == "2f1c9a8e-6a55-4a31-8f0e-1f8d2e3b4c5d"
    (reading,) = request.event.readings
    assert (reading.resource_name, reading.value_type, reading.value) == (
        "Float32", "Float32", "1.234500e+01")


def test_4x_object_payload():
    check_example(decode_event(json.dumps(WIRE_EXAMPLE_4X, indent=1).encode()))


def test_3x_base64_json_payload():
    body = base64.b64encode(json.dumps(REQUEST, separators=(",", ":")).encode()).decode()
    check_example(decode_event(json.dumps(WIRE_EXAMPLE_4X | {"payload": body}).encode()))


def test_base64_cbor_payload_with_binary_reading():
    request = device_event("Camera", "Camera", "Image", {})
    request["event"]["readings"] = [{"resourceName": "Image", "valueType": "Binary",
                                     "binaryValue": b"\x00\x01\xff", "mediaType": "image/raw"}]
    body = base64.b64encode(cbor2.dumps(request)).decode()
    message = WIRE_EXAMPLE_4X | {"payload": body, "contentType": "application/cbor"}
    event = decode_event(json.dumps(message).encode()).event
    assert event.readings[0].binary_value == b"\x00\x01\xff"
    assert list(parse_value(event.readings[0])) == [0.0, 1.0, 255.0]


@pytest.mark.parametrize("payload, content_type", [
    (REQUEST, "application/json"),
    (json.dumps(REQUEST).encode(), "application/json"),
    (cbor2.dumps(REQUEST), "application/cbor"),
])
def test_cbor_envelope(payload, content_type):
    check_example(decode_event(cbor2.dumps(WIRE_EXAMPLE_4X | {"payload": payload,
                                                               "contentType": content_type})))


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"{oops", "invalid envelope JSON"),
    (b'{"payload": 3}', "neither an object nor base64"),
    (b'{"payload": "!!!"}', "not valid base64"),
    (json.dumps(WIRE_EXAMPLE_4X | {"errorCode": 1, "payload": base64.b64encode(
        b"device offline").decode(), "contentType": "text/plain"}).encode(), "device offline"),
    (envelope({"apiVersion": "v3", "event": {"deviceName": "x", "readings": "no"}}),
     "not an AddEventRequest"),
    (b"\xa1\x01\x02", "no payload"),
    (b"\x82\x01\x02", "not an envelope"),
])
def test_bad_messages_say_why(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_event(data)


@pytest.mark.parametrize("value_type, value, expected", [
    ("Float32", "1.234500e+01", 12.345),     # 3.x and 4.0.0: %e
    ("Float32", "1.2345e+01", 12.345),       # 4.0.1+: shortest e form
    ("Float64", "12.345", 12.345),           # device-rest and custom services
    ("Int16", "-42", -42.0),
    ("Uint64", "18446744073709551615", 18446744073709551615.0),
    ("Bool", "true", 1.0),
    ("Bool", "false", 0.0),
])
def test_scalar_values(value_type, value, expected):
    reading = Reading(resource_name="R", value_type=value_type, value=value)
    assert parse_value(reading) == pytest.approx(expected)


@pytest.mark.parametrize("value_type, value, expected", [
    ("Float32Array", "[1.000000e+00, 2.000000e+00]", [1.0, 2.0]),
    ("Int8Array", "[1, -2, 3]", [1.0, -2.0, 3.0]),
    ("BoolArray", "[true, false]", [1.0, 0.0]),
    ("Uint16Array", "[]", []),
])
def test_array_values(value_type, value, expected):
    reading = Reading(resource_name="R", value_type=value_type, value=value)
    assert parse_value(reading).tolist() == expected


def test_object_value():
    reading = Reading(resource_name="R", value_type="Object", object_value=[[1, 2], [3, 4]])
    assert parse_value(reading).tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("value_type, value", [
    ("Float32", "NaN"), ("Float32", "+Inf"), ("Float64", "-Inf"), ("Float32", "1_0"),
    ("Float32", " 1"), ("Int32", "1.5"), ("Bool", "True"), ("String", "x"),
    ("Float32Array", "1, 2"), ("Float32Array", "[1, NaN]"), ("Object", None),
])
def test_values_a_model_cannot_take(value_type, value):
    reading = Reading(resource_name="Temp", value_type=value_type, value=value or "",
                      object_value={"a": 1} if value is None else None)
    with pytest.raises(ReadingError, match="'Temp'"):
        parse_value(reading)


def result_event() -> Event:
    return Event(id="6c4d2b0c-2d1a-4f1e-9c55-0d1b2e3f4a5b", device_name="Pump-01",
                 profile_name="pump-anomaly-result", source_name="pump_anomaly", origin=1,
                 readings=[Reading(origin=1, device_name="Pump-01", resource_name="Anomaly",
                                   profile_name="pump-anomaly-result", value_type="Bool",
                                   value="true")],
                 tags={"model": "pump_anomaly"})


@pytest.mark.parametrize("options", [{}, {"base64_payload": True}, {"cbor_payload": True}])
def test_encoded_results_decode_and_validate(options):
    data = encode_event_envelope(result_event(), **options)
    envelope_json = json.loads(data)
    assert envelope_json["apiVersion"] == "v3" and envelope_json["errorCode"] == 0
    request = decode_event(data)
    assert request.event == result_event()
    assert schema_errors("core-data", "AddEventRequest", msgspec.to_builtins(request)) == []


def test_topics():
    assert escape_level("this-is_test.string~") == "this%2Dis%5Ftest%2Estring%7E"
    assert escape_level("^[this]+{is}?test:string*#") == "%5E%5Bthis%5D%2B%7Bis%7D%3Ftest:string%2A%23"
    assert event_topic("edgex", "p", "d", "s") == "edgex/events/device/app-tflite-inference/p/d/s"
    assert event_topic("edgex", "p-1", "d", "s", escape=True).split("/")[-3] == "p%2D1"
    assert publisher_of("edgex/events/device/device-virtual/p/d/s", "edgex") == "device-virtual"
    assert publisher_of("edgex/events/core/core-data/p/d/s", "edgex") == "core-data"
    assert publisher_of("other/topic", "edgex") == ""
    assert subscriptions("edgex", "events/device/#, events/core/#") == [
        "edgex/events/device/#", "edgex/events/core/#"]
    assert subscriptions("edgex", "$share/inference/events/device/#") == [
        "$share/inference/edgex/events/device/#"]


def test_float_array_result_format():
    from app_service.readings import format_array
    assert format_array(np.array([1.0, 2.5], dtype=np.float32)) == "[1.000000e+00, 2.500000e+00]"
