"""The running service: MessageBus in, a bounded queue, one inference worker, results out."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as paho

from . import SERVICE_KEY
from .codec import encode_event_envelope
from .config import Config
from .dtos import Event
from .inference import ModelSet
from .logs import RateLimited
from .metrics import Metrics
from .mqtt import MessageBus
from .pipeline import Pipeline, Rejected, event_pipeline
from .rest import RestServer
from .telemetry import TelemetryReporter
from .topics import event_topic, join, publisher_of, subscriptions

log = logging.getLogger(__name__)
_STOP = object()
T = TypeVar("T")


class Service:
    def __init__(self, config: Config, base_dir: Path = Path()) -> None:
        self.config = config
        self.metrics = Metrics()
        self.models = ModelSet(config.inference, base_dir)
        self.pipeline: Pipeline = event_pipeline(self.models, self.metrics,
                                                 config.inference.max_message_size)
        self.queue: queue.Queue[paho.MQTTMessage | Callable[[], None] | object] = queue.Queue(
            config.inference.queue_size)
        self.metrics.queue_depth.set_function(self.queue.qsize)
        self.stopping = threading.Event()
        self.lost_bus = False  # AutoReconnect off and the broker went away: exit non-zero
        self._bad_input = RateLimited(log)
        bus = config.message_bus
        self.prefix = bus.base_topic_prefix
        self.base64_payload = os.environ.get("EDGEX_MSG_BASE64_PAYLOAD", "").lower() == "true"
        credentials = config.secret(bus.secret_name) if bus.auth_mode == "usernamepassword" else None
        self.bus = MessageBus(bus, subscriptions(self.prefix, config.trigger.subscribe_topics),
                              self._receive, credentials=credentials, on_lost=self._bus_lost,
                              on_published=self._ack_delivered)
        # Inbound messages in arrival order, each with the publishes of its results: a message
        # is acknowledged once the broker has taken all of them (at-least-once end to end), and
        # acks go out in arrival order as MQTT asks.
        self._unacked: deque[tuple[paho.MQTTMessage, list[paho.MQTTMessageInfo]]] = deque()
        self._ack_lock = threading.Lock()
        self._sent: list[paho.MQTTMessageInfo] = []
        self._topics: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        # Called on the worker with each result event (deployment.py: core-data, actuation...).
        self.result_listeners: list[Callable[[Event], None]] = []
        # Called once the last results are out but the bus is still up (actuations over it).
        self.before_disconnect: list[Callable[[], None]] = []
        self.rest = RestServer(self)
        self.telemetry = TelemetryReporter(self)

    def start(self) -> None:
        self.rest.start()
        self._worker.start()
        self.bus.start()
        self.telemetry.start()
        log.info("%s: %d model binding(s), MessageBus %s", self.config.service.startup_msg,
                 len(self.models.bound), self.bus.address)

    def stop(self) -> None:
        """Stop taking messages, finish the queued ones, then disconnect."""
        self.stopping.set()
        self.rest.stop()
        self.telemetry.stop()
        self.bus.unsubscribe()
        self.queue.put(_STOP)
        self._worker.join(timeout=10)
        for drain in self.before_disconnect:
            drain()
        self.bus.stop()
        log.info("%s stopped", SERVICE_KEY)

    def run_until_signalled(self) -> None:
        """After start(): serve until SIGTERM or SIGINT (or a lost bus), then stop."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.stopping.wait()
        self.stop()

    def _bus_lost(self) -> None:
        self.lost_bus = True
        self.stopping.set()

    def _receive(self, message: paho.MQTTMessage) -> None:
        """Runs on paho's network thread: keep it short; a full queue pushes back on the broker."""
        self.metrics.received.inc()
        self.queue.put(message)

    def _work(self) -> None:
        while True:
            try:
                # with acks outstanding, wake up now and then in case a PUBACK raced past us
                item = self.queue.get(timeout=0.1 if self._unacked else None)
            except queue.Empty:
                self._ack_delivered()
                continue
            if item is _STOP:
                self._finish_acks()
                return
            self._sent = []  # publish() collects this item's result messages here
            if callable(item):  # work from a REST request, see call_in_worker
                item()
                continue
            assert isinstance(item, paho.MQTTMessage)
            if publisher_of(item.topic, self.prefix) != SERVICE_KEY:
                with contextlib.suppress(Exception):  # process() counted and logged it
                    self.process(item.topic, item.payload)
            with self._ack_lock:
                self._unacked.append((item, self._sent))
            self._ack_delivered()

    def _finish_acks(self, timeout: float = 3.0) -> None:
        """At shutdown, give the broker a moment to take the last results, so that their
        messages are acknowledged rather than delivered again after a restart."""
        deadline = time.monotonic() + timeout
        while self._unacked and time.monotonic() < deadline:
            time.sleep(0.01)
            self._ack_delivered()

    def _result_topics(self, profile: str, device: str, source: str) -> tuple[str, ...]:
        """The device-service events topic that core-data stores from (unless Export is rest:
        core-data then gets results by REST, from a result listener), and Trigger.PublishTopic.
        Kept per (profile, device, source): building them is a good part of publishing."""
        key = (profile, device, source)
        topics = self._topics.get(key)
        if topics is None:
            if len(self._topics) > 100_000:
                self._topics.clear()
            names = []
            if self.config.inference.export != "rest":
                names.append(event_topic(self.prefix, profile, device, source,
                                         escape=self.config.service.enable_name_field_escape))
            if self.config.trigger.publish_topic:
                names.append(join(self.prefix, self.config.trigger.publish_topic))
            topics = self._topics[key] = tuple(names)
        return topics

    def _ack_delivered(self, just_published: int | None = None) -> None:
        """Acknowledge, in order, the inbound messages whose results the broker has taken.

        Called by the worker, and by paho with the mid of each PUBACK (before paho marks
        that message published, hence `just_published`)."""
        with self._ack_lock:
            while self._unacked:
                message, sent = self._unacked[0]
                if not all(info.is_published() or info.mid == just_published for info in sent):
                    return
                self._unacked.popleft()
                self.bus.ack(message)

    def call_in_worker(self, work: Callable[[], T]) -> Future[T]:
        """Run `work` on the inference worker between two messages: interpreters are not
        thread-safe, and this keeps locks off the MessageBus path. Raises queue.Full."""
        future: Future[T] = Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():  # the caller may have given up
                try:
                    future.set_result(work())
                except Exception as exc:
                    future.set_exception(exc)

        self.queue.put_nowait(run)
        return future

    def process(self, topic: str, payload: bytes) -> list[Event]:
        """Run one message through the pipeline and publish its results. Bad input raises
        Rejected, a failure raises as it is; both are counted and logged here first."""
        started = time.perf_counter()
        try:
            results = self.pipeline(payload) or []
            for result in results:
                self.publish(result)
        except Rejected as exc:
            self.metrics.invalid.labels(exc.reason).inc()
            self._bad_input.warning("dropped message on %s: %s", topic, exc)
            raise
        except Exception:
            self.metrics.errors.inc()
            log.exception("processing a message on %s failed", topic)
            raise
        self.metrics.processed.inc()
        self.metrics.processing_time.observe(time.perf_counter() - started)
        return results

    def publish(self, result: Event) -> None:
        payload = encode_event_envelope(result, base64_payload=self.base64_payload)
        topics = self._result_topics(result.profile_name, result.device_name, result.source_name)
        for topic in topics:
            info = self.bus.publish(topic, payload)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                self.metrics.mqtt_export_size.observe(len(payload))
            else:
                self.metrics.mqtt_export_errors.inc()
            # paho keeps a publish made while disconnected and sends it after reconnecting
            if info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN) and self.bus.qos:
                self._sent.append(info)
        self.metrics.results.labels(result.source_name).inc()
        for listener in self.result_listeners:
            listener(result)
