"""The REST API of the running service: EdgeX's common endpoints (checked against the EdgeX specs),
the trigger, models and their reload, Prometheus metrics, and the committed OpenAPI document."""

from __future__ import annotations

import hashlib
import shutil
import socket

import cbor2
import requests
from prometheus_client.parser import text_string_to_metric_families

from app_service.rest import openapi_document

from .mqtt_helpers import (
    REPO,
    RESULTS,
    ServiceProcess,
    device_topic,
    envelope,
    float_event,
    payload_of,
)
from .openapi_specs import schema_errors

OPENAPI = REPO / "openapi" / "app-tflite-inference.yaml"
FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")


def url(running: ServiceProcess, path: str) -> str:
    return f"http://127.0.0.1:{running.rest_port}{path}"


def check_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert schema_errors("core-data", "ErrorResponse", body) == []
    assert body["apiVersion"] == "v3" and body["statusCode"] == status
    return body["message"]


def prediction(body: dict) -> float:
    assert schema_errors("core-data", "MultiEventsResponse", body) == []
    (event,) = body["events"]
    (reading,) = event["readings"]
    assert reading["resourceName"] == "Prediction"
    return float(reading["value"])


def metric_values(running: ServiceProcess) -> dict[str, float]:
    """Every sample of /metrics by name and labels, e.g. 'app_tflite_invalid_messages_total{...}'."""
    response = requests.get(url(running, "/metrics"), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {sample.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                           + "}" if sample.labels else ""): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def test_committed_openapi_document_is_current():
    assert OPENAPI.is_file(), "run `make openapi` to write the OpenAPI document"
    document = openapi_document()
    # Litestar's generated examples are random: a second build in one process would differ.
    assert openapi_document() == document, "the OpenAPI document is not deterministic"
    assert document == OPENAPI.read_text(), \
        "the API changed: run `make openapi` and commit openapi/app-tflite-inference.yaml"


def test_common_endpoints_answer_as_edgex_services_do(service):
    running = service(env={"WRITABLE_INSECURESECRETS_MQTT_SECRETDATA_PASSWORD": "hunter2"})
    for path, schema in (("/api/v3/ping", "PingResponse"), ("/api/v3/version", "VersionResponse"),
                         ("/api/v3/config", "ConfigResponse")):
        response = requests.get(url(running, path), timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert schema_errors("core-data", schema, body) == []
        assert body["apiVersion"] == "v3" and body["serviceName"] == "app-tflite-inference"
    assert requests.get(url(running, "/api/v3/ping"), timeout=10).json()["timestamp"].endswith(" GMT")
    version = requests.get(url(running, "/api/v3/version"), timeout=10).json()
    assert version["version"] and version["sdk_version"]
    config = requests.get(url(running, "/api/v3/config"), timeout=10)
    assert "hunter2" not in config.text
    settings = config.json()["config"]
    assert settings["Writable"]["InsecureSecrets"]["mqtt"]["SecretData"]["password"] == "***"
    assert settings["Service"]["Port"] == running.rest_port
    served = requests.get(url(running, "/api/v3/openapi.yaml"), timeout=10)
    assert served.status_code == 200 and served.text == OPENAPI.read_text()


def test_trigger_runs_the_pipeline_and_returns_the_results(service, peer):
    results = peer(RESULTS)
    running = service()
    request = float_event("5.0")
    cbor_request = float_event("5.0")
    posts = [
        {"json": request},  # an AddEventRequest
        {"json": float_event("5.0")["event"]},  # a bare Event
        {"data": envelope(float_event("5.0")), "headers": {"Content-Type": "application/json"}},
        {"data": envelope(float_event("5.0"), base64_payload=True)},
        {"data": cbor2.dumps(cbor_request), "headers": {"Content-Type": "application/cbor"}},
    ]
    for post in posts:
        response = requests.post(url(running, "/api/v3/trigger"), timeout=10, **post)
        assert response.status_code == 200, response.text
        assert response.json()["totalCount"] == 1
        assert abs(prediction(response.json()) - 10) < 0.5
    # the results also go where MessageBus results go
    published = [payload_of(message)["event"] for message in results.take(len(posts))]
    assert published[0]["tags"]["sourceEventId"] == request["event"]["id"]
    assert published[-1]["tags"]["sourceEventId"] == cbor_request["event"]["id"]


def test_trigger_rejects_bad_input_with_an_edgex_error(service):
    running = service(env={"SERVICE_MAXREQUESTSIZE": "1"})  # KB
    trigger = url(running, "/api/v3/trigger")
    cases = [
        ({"data": b"{not json"}, "not JSON"),
        ({"json": [1, 2]}, "AddEventRequest, an Event or a MessageEnvelope"),
        ({"json": {"something": "else"}}, "AddEventRequest, an Event or a MessageEnvelope"),
        ({"json": float_event("not-a-number")}, "unparsable Float32 value 'not-a-number'"),
        ({"json": float_event("1") | {"event": {"deviceName": "D", "readings": []}}}, "no readings"),
        ({"json": {"payload": "%%%"}}, "base64"),
        ({"data": b"\xa1garbage", "headers": {"Content-Type": "application/cbor"}}, "CBOR"),
    ]
    for post, problem in cases:
        assert problem in check_error(requests.post(trigger, timeout=10, **post), 400)
    oversized = float_event("1.0") | {"requestId": "x" * 1024}
    assert "limit of 1024 bytes (Service.MaxRequestSize" in check_error(
        requests.post(trigger, json=oversized, timeout=10), 413)
    assert abs(prediction(requests.post(trigger, json=float_event("1.0"), timeout=10).json()) - 2) < 0.5
    counted = metric_values(running)
    assert sum(value for name, value in counted.items()
               if name.startswith("app_tflite_invalid_messages_total")) == len(cases) + 1
    assert counted["app_tflite_invalid_messages_total{reason=oversized}"] == 1
    # (plus, maybe, the good result coming back on the subscription)
    assert counted["app_tflite_messages_received_total"] >= len(cases) + 2


def test_unknown_routes_get_edgex_errors(service):
    running = service()
    check_error(requests.get(url(running, "/api/v3/nothing"), timeout=10), 404)
    check_error(requests.delete(url(running, "/api/v3/ping"), timeout=10), 405)


def test_models_show_versions_bindings_and_counters(service):
    running = service()
    requests.post(url(running, "/api/v3/trigger"), json=float_event("3.0"), timeout=10)
    response = requests.get(url(running, "/api/v3/models"), timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["apiVersion"] == "v3" and body["backends"]
    (model,) = body["models"]
    file = REPO / "models" / "linear_regression.tflite"
    assert model["name"] == "linear_regression"
    assert model["version"] == hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    assert model["backend"] in body["backends"]
    assert model["resultProfile"] == "linear-regression-result"
    assert [f["resource"] for f in model["features"]] == ["Float32"]
    assert model["results"] == [{"resourceName": "Prediction", "valueType": "Float32", "units": ""}]
    assert model["inputTensors"][0]["shape"][-1] == 1 and model["outputTensors"]
    assert model["bindings"] == [{"deviceName": "Random-Float-Device", "profileName": "*",
                                  "sourceName": "Float32", "resources": ["Float32"]}]
    assert model["inferences"] == 1 and model["errors"] == 0


def test_reload_swaps_the_model_and_keeps_the_old_one_when_the_new_does_not_load(service, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".tflite", ".yaml"):
        shutil.copy(REPO / "models" / f"linear_regression{suffix}", models)
    running = service(env={"INFERENCE_MODELSDIR": str(models)})
    reload = url(running, "/api/v3/models/linear_regression/reload")
    trigger = url(running, "/api/v3/trigger")
    (before,) = requests.get(url(running, "/api/v3/models"), timeout=10).json()["models"]

    (models / "linear_regression.tflite").write_bytes(b"not a flatbuffer")
    message = check_error(requests.post(reload, timeout=10), 422)
    assert "linear_regression.tflite" in message and before["version"] in message
    (still,) = requests.get(url(running, "/api/v3/models"), timeout=10).json()["models"]
    assert still["version"] == before["version"]
    assert abs(prediction(requests.post(trigger, json=float_event("5.0"), timeout=10).json()) - 10) < 0.5

    replacement = REPO / "models" / "pump_anomaly.tflite"
    shutil.copy(replacement, models / "linear_regression.tflite")
    response = requests.post(reload, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["previousVersion"] == before["version"]
    assert body["model"]["version"] == hashlib.sha256(replacement.read_bytes()).hexdigest()[:12]
    assert body["model"]["inputTensors"] != before["inputTensors"]
    assert "reloaded" in running.log

    assert "lin" in check_error(requests.post(url(running, "/api/v3/models/nope/reload"),
                                              timeout=10), 404)


def test_metrics_follow_messagebus_traffic(service, peer):
    results = peer(RESULTS)
    running = service()
    device = peer()
    good, bad = 3, 2
    for _ in range(bad):
        device.publish(FLOAT_TOPIC, b"{broken")
    for i in range(good):
        device.publish(FLOAT_TOPIC, envelope(float_event(f"{i}.0")))
    results.take(good)  # one worker, in order: the bad ones were handled before these
    counted = metric_values(running)
    assert counted["app_tflite_messages_received_total"] >= good + bad
    assert counted["app_tflite_invalid_messages_total{reason=malformed}"] == bad
    assert counted["app_tflite_pipeline_messages_processed_total"] == good
    assert counted["app_tflite_pipeline_message_processing_seconds_count"] == good
    assert counted["app_tflite_mqtt_export_size_bytes_count"] == good
    assert counted["app_tflite_mqtt_export_size_bytes_sum"] > good * 100
    assert counted["app_tflite_inference_latency_seconds_count{model=linear_regression}"] == good
    assert counted["app_tflite_results_published_total{model=linear_regression}"] == good
    assert counted["app_tflite_pipeline_processing_errors_total"] == 0
    assert counted["app_tflite_queue_depth"] >= 0
    for name in ("http_export_errors_total", "http_export_size_bytes_count",
                 "store_forward_queue_size"):
        assert counted["app_tflite_" + name] == 0


def test_a_taken_port_stops_the_start_with_a_clear_error(service):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        running = service(env={"SERVICE_HOST": "127.0.0.1", "SERVICE_PORT": str(port)}, wait=None)
        assert running.process.wait(30) == 1
    assert f"cannot start: Service.Port: cannot listen on 127.0.0.1:{port}" in running.log
    assert "Traceback" not in running.log


def test_a_bad_request_timeout_stops_the_start_before_any_request(service):
    running = service(env={"SERVICE_REQUESTTIMEOUT": "soon"}, wait=None)
    assert running.process.wait(30) != 0
    assert "cannot start: Service.RequestTimeout: 'soon' is not a duration" in running.log
