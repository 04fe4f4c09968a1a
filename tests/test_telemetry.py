"""EdgeX telemetry from the running service: Metric DTOs on edgex/telemetry/app-tflite-inference/*,
shaped as go-mod-bootstrap publishes them, with the values /metrics shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from .mqtt_helpers import REPO, RESULTS, Peer, device_topic, envelope, float_event, payload_of

TELEMETRY = "edgex/telemetry/app-tflite-inference/#"
FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")
COUNTERS = {"MessagesReceived", "InvalidMessagesReceived", "PipelineMessagesProcessed",
            "PipelineProcessingErrors", "MqttExportErrors", "HttpExportErrors"}
PIPELINE = {"PipelineMessagesProcessed", "PipelineMessageProcessingTime", "PipelineProcessingErrors"}
ALL = COUNTERS | PIPELINE | {"MqttExportSize", "HttpExportSize", "StoreForwardQueueSize"}


def config_dir(tmp_path: Path, metrics: set[str], tags: dict[str, str]) -> Path:
    """res/configuration.yaml with these telemetry metrics enabled and these tags."""
    config = yaml.safe_load((REPO / "res" / "configuration.yaml").read_text())
    config["Writable"]["Telemetry"]["Metrics"] = {name: name in metrics for name in ALL}
    config["Writable"]["Telemetry"]["Tags"] = tags
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "configuration.yaml").write_text(yaml.safe_dump(config))
    return folder


def metrics(telemetry: Peer) -> Iterator[dict[str, Any]]:
    """Metric DTOs as they arrive, after checking the topic names the metric."""
    while True:
        (message,) = telemetry.take(1, timeout=15)
        metric = payload_of(message)
        assert message.topic == f"edgex/telemetry/app-tflite-inference/{metric['name']}"
        yield metric


def rounds(telemetry: Peer) -> Iterator[dict[str, dict[str, Any]]]:
    """Complete reporting rounds: every metric of one round shares its timestamp."""
    current: dict[str, dict[str, Any]] = {}
    for metric in metrics(telemetry):
        if current and metric["timestamp"] != next(iter(current.values()))["timestamp"]:
            yield current
            current = {}
        current[metric["name"]] = metric


def fields(metric: dict[str, Any]) -> dict[str, Any]:
    return {field["name"]: field["value"] for field in metric["fields"]}


def test_metrics_are_published_every_interval_as_edgex_metric_dtos(service, peer, tmp_path):
    telemetry = peer(TELEMETRY)
    results = peer(RESULTS)
    running = service("-cd", str(config_dir(tmp_path, ALL, {"Gateway": "gw-1"})),
                      env={"WRITABLE_TELEMETRY_INTERVAL": "1s"})
    device = peer()
    good = 3
    device.publish(FLOAT_TOPIC, b"{broken")
    for i in range(good):
        device.publish(FLOAT_TOPIC, envelope(float_event(f"{i}.0")))
    results.take(good)

    # the first round that saw all the traffic
    latest = next(r for r in rounds(telemetry) if r["PipelineMessagesProcessed"]["fields"][0]["value"])
    assert set(latest) == ALL
    for name, metric in latest.items():
        assert metric["apiVersion"] == "v3" and isinstance(metric["timestamp"], int)
        assert metric["timestamp"] > 1_600_000_000 * 10**9  # nanoseconds
        tags = {tag["name"]: tag["value"] for tag in metric["tags"]}
        expected = {"service": "app-tflite-inference", "Gateway": "gw-1"}
        if name in PIPELINE:
            expected["pipeline"] = "default-pipeline"
        assert tags == expected
        if name in COUNTERS:
            assert list(fields(metric)) == ["counter-count"]

    assert fields(latest["PipelineMessagesProcessed"])["counter-count"] == good
    assert fields(latest["InvalidMessagesReceived"])["counter-count"] == 1
    assert fields(latest["MessagesReceived"])["counter-count"] >= good + 1
    assert fields(latest["PipelineProcessingErrors"])["counter-count"] == 0
    timer = fields(latest["PipelineMessageProcessingTime"])
    assert list(timer) == [f"timer-{s}" for s in ("count", "min", "max", "mean", "stddev", "variance")]
    assert timer["timer-count"] == good
    assert 0 < timer["timer-min"] <= timer["timer-mean"] <= timer["timer-max"] < 10**10  # ns
    sizes = fields(latest["MqttExportSize"])
    assert sizes["histogram-count"] == good and sizes["histogram-min"] > 100
    assert fields(latest["HttpExportSize"])["histogram-count"] == 0
    assert fields(latest["HttpExportErrors"])["counter-count"] == 0
    assert fields(latest["StoreForwardQueueSize"]) == {"gauge-value": 0}

    # one source of truth: /metrics says the same
    scraped = requests.get(f"http://127.0.0.1:{running.rest_port}/metrics", timeout=10).text
    assert f"app_tflite_pipeline_messages_processed_total {good}.0" in scraped
    assert f"app_tflite_mqtt_export_size_bytes_count {good}.0" in scraped


def test_only_enabled_metrics_are_published(service, peer, tmp_path):
    telemetry = peer(TELEMETRY)
    enabled = {"MessagesReceived", "PipelineMessageProcessingTime"}
    service("-cd", str(config_dir(tmp_path, enabled, {})), env={"WRITABLE_TELEMETRY_INTERVAL": "1s"})
    stream = rounds(telemetry)
    for _ in range(2):
        assert set(next(stream)) == enabled


def test_interval_zero_turns_telemetry_off(service, peer):
    telemetry = peer(TELEMETRY)
    running = service(env={"WRITABLE_TELEMETRY_INTERVAL": "0s"})
    peer().publish(FLOAT_TOPIC, envelope(float_event("1.0")))
    telemetry.assert_silent(3)
    assert running.process.poll() is None


def test_base64_payloads_for_3x_receivers(service, peer):
    telemetry = peer(TELEMETRY)
    service(env={"WRITABLE_TELEMETRY_INTERVAL": "1s", "EDGEX_MSG_BASE64_PAYLOAD": "true"})
    (message,) = telemetry.take(1, timeout=15)
    body = json.loads(message.payload)
    assert isinstance(body["payload"], str) and body["contentType"] == "application/json"
    assert payload_of(message)["name"] == message.topic.rsplit("/", 1)[1]
