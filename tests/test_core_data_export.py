"""Result events POSTed to core-data's REST API (Inference.Export: rest | both)."""

from __future__ import annotations

from .deployment_helpers import metric, wait_for_metric
from .mqtt_helpers import RESULTS, device_topic, envelope, float_event, payload_of

FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")
POSTED = "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}"


def export_env(edgex, export: str) -> dict[str, str]:
    return {**edgex.env(), "INFERENCE_EXPORT": export, "METADATA_ENABLED": "false"}


def test_rest_export_instead_of_the_messagebus(edgex, service, peer):
    running = service(env=export_env(edgex, "rest"))
    request = float_event("5.0")
    peer().publish(FLOAT_TOPIC, envelope(request))
    posted = edgex.wait_for(lambda r: r.route == POSTED)
    assert posted.path == ("/api/v3/event/app-tflite-inference/linear-regression-result/"
                           "Random-Float-Device/linear_regression")
    (event,) = edgex.events
    assert event["tags"]["sourceEventId"] == request["event"]["id"]
    assert abs(float(event["readings"][0]["value"]) - 10) < 0.5
    wait_for_metric(running, "app_tflite_http_export_size_bytes_count", 1)
    assert metric(running, "app_tflite_results_published_total") == 1
    assert metric(running, "app_tflite_mqtt_export_size_bytes_count") == 0
    assert metric(running, "app_tflite_http_export_errors_total") == 0


def test_both_exports(edgex, service, peer):
    results = peer(RESULTS)
    running = service(env=export_env(edgex, "both"))
    peer().publish(FLOAT_TOPIC, envelope(float_event("2.0")))
    (message,) = results.take(1)
    wait_for_metric(running, "app_tflite_http_export_size_bytes_count", 1)
    (event,) = edgex.events
    assert event == payload_of(message)["event"]


def test_core_data_failures_are_counted_and_inference_goes_on(edgex, service, peer):
    edgex.outages["core-data"] = 500
    results = peer(RESULTS)
    running = service(env=export_env(edgex, "both"))
    device = peer()
    for value in ("1.0", "2.0"):
        device.publish(FLOAT_TOPIC, envelope(float_event(value)))
    results.take(2)
    wait_for_metric(running, "app_tflite_http_export_errors_total", 2)
    assert "core-data did not take the result of linear_regression" in running.log
    del edgex.outages["core-data"]
    device.publish(FLOAT_TOPIC, envelope(float_event("3.0")))
    wait_for_metric(running, "app_tflite_http_export_size_bytes_count", 1)
    assert len(edgex.events) == 1
