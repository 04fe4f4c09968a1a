"""Counters the service keeps, as Prometheus metrics (scraped at /metrics, sent as telemetry)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)
_SIZE_BUCKETS = (256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576)


@dataclass(frozen=True)
class Stats:
    count: int
    min: float
    max: float
    mean: float
    variance: float

    @property
    def stddev(self) -> float:
        return math.sqrt(self.variance)


class Distribution:
    """A Prometheus histogram that also keeps min, max, mean and variance of all observations.

    EdgeX telemetry reports timers and histograms as those statistics (go-metrics snapshots);
    Prometheus buckets cannot give them back, so both are fed by the same observe().
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        self.histogram = Histogram(name, documentation, buckets=buckets, registry=registry)
        self._lock = threading.Lock()
        self._count = 0
        self._min = math.inf
        self._max = -math.inf
        self._mean = 0.0
        self._m2 = 0.0

    def observe(self, value: float) -> None:
        self.histogram.observe(value)
        with self._lock:  # Welford's online mean and variance
            self._count += 1
            delta = value - self._mean
            self._mean += delta / self._count
            self._m2 += delta * (value - self._mean)
            self._min = min(self._min, value)
            self._max = max(self._max, value)

    def stats(self) -> Stats:
        with self._lock:
            if not self._count:
                return Stats(0, 0.0, 0.0, 0.0, 0.0)
            return Stats(self._count, self._min, self._max, self._mean, self._m2 / self._count)


def value(metric: MetricWrapperBase) -> float:
    """A counter's total (summed over its labels) or a gauge's value."""
    total = 0.0
    for family in metric.collect():
        wanted = family.name + "_total" if family.type == "counter" else family.name
        total += sum(sample.value for sample in family.samples if sample.name == wanted)
    return total


class Metrics:
    """One registry per service instance, so tests can run several services in one process."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.received = Counter("app_tflite_messages_received",
                                "MessageBus messages (and REST trigger requests) received",
                                registry=registry)
        self.invalid = Counter("app_tflite_invalid_messages",
                               "Messages rejected as unusable, by reason", ["reason"],
                               registry=registry)
        self.processed = Counter("app_tflite_pipeline_messages_processed",
                                 "Messages the pipeline processed", registry=registry)
        self.errors = Counter("app_tflite_pipeline_processing_errors",
                              "Unexpected errors while processing a message", registry=registry)
        self.processing_time = Distribution("app_tflite_pipeline_message_processing_seconds",
                                            "Time from dequeue to results published",
                                            _LATENCY_BUCKETS, registry)
        self.inference_latency = Histogram("app_tflite_inference_latency_seconds",
                                           "Model invocation time", ["model"],
                                           buckets=_LATENCY_BUCKETS, registry=registry)
        self.results = Counter("app_tflite_results_published",
                               "Result events published", ["model"], registry=registry)
        self.mqtt_export_size = Distribution("app_tflite_mqtt_export_size_bytes",
                                             "Size of each result message published",
                                             _SIZE_BUCKETS, registry)
        self.mqtt_export_errors = Counter("app_tflite_mqtt_export_errors",
                                          "Result messages the MessageBus did not take",
                                          registry=registry)
        self.http_export_size = Distribution("app_tflite_http_export_size_bytes",
                                             "Size of each result event POSTed to core-data",
                                             _SIZE_BUCKETS, registry)
        self.http_export_errors = Counter("app_tflite_http_export_errors",
                                          "Result events core-data did not take",
                                          registry=registry)
        self.store_forward_queue_size = Gauge("app_tflite_store_forward_queue_size",
                                              "Exports waiting to be retried (store and forward)",
                                              registry=registry)
        self.actuations = Counter("app_tflite_actuations",
                                  "Actuation commands by rule and outcome (success, failure)",
                                  ["rule", "outcome"], registry=registry)
        self.actuation_latency = Histogram("app_tflite_actuation_latency_seconds",
                                           "Time from sending an actuation command to its answer",
                                           ["rule"], registry=registry)
        self.queue_depth = Gauge("app_tflite_queue_depth",
                                 "Messages waiting between MQTT and inference", registry=registry)
