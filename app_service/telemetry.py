"""EdgeX telemetry: the service's metrics as Metric DTOs on {prefix}/telemetry/{service}/{name}
every Writable.Telemetry.Interval, shaped as go-mod-bootstrap's MessageBus reporter sends them.

The values are read from the Prometheus metrics that /metrics serves, so both always agree.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec

from . import SERVICE_KEY
from .background import Background
from .codec import encode_envelope
from .config import duration
from .dtos import Metric
from .metrics import Distribution, Metrics, value
from .topics import join

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

Fields = list[dict[str, Any]]
# Pipeline metrics carry the pipeline's id; this service runs EdgeX's single default pipeline.
_PIPELINE = {"pipeline": "default-pipeline"}
_encoder = msgspec.json.Encoder()


def counter(total: float) -> Fields:
    return [{"name": "counter-count", "value": int(total)}]


def gauge(current: float) -> Fields:
    return [{"name": "gauge-value", "value": int(current)}]


def distribution(kind: str, metric: Distribution, scale: float = 1.0) -> Fields:
    """A go-metrics timer ("timer") or histogram ("histogram") snapshot; `scale` converts units."""
    stats = metric.stats()
    return [
        {"name": f"{kind}-count", "value": stats.count},
        {"name": f"{kind}-min", "value": round(stats.min * scale)},
        {"name": f"{kind}-max", "value": round(stats.max * scale)},
        {"name": f"{kind}-mean", "value": stats.mean * scale},
        {"name": f"{kind}-stddev", "value": stats.stddev * scale},
        {"name": f"{kind}-variance", "value": stats.variance * scale * scale},
    ]


def edgex_metrics(metrics: Metrics) -> dict[str, tuple[Fields, dict[str, str]]]:
    """EdgeX's application service metrics: name -> (fields, extra tags)."""
    return {
        "MessagesReceived": (counter(value(metrics.received)), {}),
        "InvalidMessagesReceived": (counter(value(metrics.invalid)), {}),
        "PipelineMessagesProcessed": (counter(value(metrics.processed)), _PIPELINE),
        # go-metrics timers count in nanoseconds
        "PipelineMessageProcessingTime": (distribution("timer", metrics.processing_time, 1e9),
                                          _PIPELINE),
        "PipelineProcessingErrors": (counter(value(metrics.errors)), _PIPELINE),
        "HttpExportSize": (distribution("histogram", metrics.http_export_size), {}),
        "HttpExportErrors": (counter(value(metrics.http_export_errors)), {}),
        "MqttExportSize": (distribution("histogram", metrics.mqtt_export_size), {}),
        "MqttExportErrors": (counter(value(metrics.mqtt_export_errors)), {}),
        "StoreForwardQueueSize": (gauge(value(metrics.store_forward_queue_size)), {}),
    }


def _tags(tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "value": tag} for name, tag in tags.items()]


class TelemetryReporter(Background):
    """Publishes the metrics enabled in Writable.Telemetry.Metrics; Interval "0s" turns it off."""

    def __init__(self, service: Service) -> None:
        super().__init__("telemetry")
        self.service = service
        self.interval = duration(service.config.writable.telemetry.interval,
                                 key="Writable.Telemetry.Interval")

    def start(self) -> None:
        if self.interval:
            super().start()

    def stop(self, timeout: float | None = 5) -> None:
        if self.interval:
            super().stop(timeout)

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.report()

    def report(self) -> None:
        """Publish one round of the enabled metrics, all with the same timestamp."""
        service = self.service
        settings = service.config.writable.telemetry
        tags = _tags(settings.tags) + _tags({"service": SERVICE_KEY})
        timestamp = time.time_ns()
        sent = 0
        for name, (fields, extra) in edgex_metrics(service.metrics).items():
            if not settings.metrics.get(name):
                continue
            metric = Metric(name=name, fields=fields, tags=tags + _tags(extra), timestamp=timestamp)
            payload = encode_envelope(_encoder.encode(metric), base64_payload=service.base64_payload)
            service.bus.publish(join(service.prefix, "telemetry", SERVICE_KEY, name), payload)
            sent += 1
        log.debug("published %d telemetry metrics", sent)
