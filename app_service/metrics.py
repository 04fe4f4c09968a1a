"""Counters the service keeps, as Prometheus metrics (scraped at /metrics, sent as telemetry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)


class Metrics:
    """One registry per service instance, so tests can run several services in one process."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.received = Counter("app_tflite_messages_received",
                                "MessageBus messages received", registry=registry)
        self.invalid = Counter("app_tflite_invalid_messages",
                               "Messages rejected as unusable, by reason", ["reason"],
                               registry=registry)
        self.processed = Counter("app_tflite_pipeline_messages_processed",
                                 "Messages the pipeline processed", registry=registry)
        self.errors = Counter("app_tflite_pipeline_processing_errors",
                              "Unexpected errors while processing a message", registry=registry)
        self.processing_time = Histogram("app_tflite_pipeline_message_processing_seconds",
                                         "Time from dequeue to results published",
                                         buckets=_LATENCY_BUCKETS, registry=registry)
        self.inference_latency = Histogram("app_tflite_inference_latency_seconds",
                                           "Model invocation time", ["model"],
                                           buckets=_LATENCY_BUCKETS, registry=registry)
        self.results = Counter("app_tflite_results_published",
                               "Result events published", ["model"], registry=registry)
        self.mqtt_export_size = Counter("app_tflite_mqtt_export_bytes",
                                        "Bytes of result messages published", registry=registry)
        self.mqtt_export_errors = Counter("app_tflite_mqtt_export_errors",
                                          "Result messages the MessageBus did not take",
                                          registry=registry)
        self.queue_depth = Gauge("app_tflite_queue_depth",
                                 "Messages waiting between MQTT and inference", registry=registry)

    def invalid_total(self) -> float:
        return sum(sample.value for metric in self.invalid.collect() for sample in metric.samples
                   if sample.name.endswith("_total"))
