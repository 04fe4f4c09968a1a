"""Result events to core-data's REST API (Inference.Export: rest or both).

POST /api/v3/event/{service}/{profile}/{device}/{source}: core-data stores the event and
re-publishes it on edgex/events/core/... . A sender thread with a bounded queue and a keep-alive
session does the HTTP, so a slow or absent core-data never holds up inference; what cannot be
sent is dropped and counted in HttpExportErrors.
"""

from __future__ import annotations

import logging
import queue
from urllib.parse import quote

import msgspec
import requests

from . import SERVICE_KEY
from .background import Background
from .clients import EdgeXError, call, url_of
from .config import Client
from .dtos import AddEventRequest, Event, new_id
from .logs import RateLimited
from .metrics import Metrics

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
_STOP = object()
_encoder = msgspec.json.Encoder()


def event_path(event: Event) -> str:
    names = (SERVICE_KEY, event.profile_name, event.device_name, event.source_name)
    return "event/" + "/".join(quote(name, safe="") for name in names)


class CoreDataExport(Background):
    def __init__(self, client: Client, metrics: Metrics, session: requests.Session | None = None,
                 queue_size: int = QUEUE_SIZE) -> None:
        super().__init__("core-data")
        self.client = client
        self.metrics = metrics
        self.session = session or requests.Session()
        self.queue: queue.Queue[Event | object] = queue.Queue(queue_size)
        self._complaints = RateLimited(log)

    def stop(self, timeout: float | None = 10) -> None:
        """Send what is queued (for up to `timeout` seconds), then stop."""
        self.queue.put(_STOP)
        super().stop(timeout)

    def on_result(self, event: Event) -> None:
        """Called with every result event, on the inference worker: only enqueues."""
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.metrics.http_export_errors.inc()
            self._complaints.warning("core-data export queue is full (%d): dropped the result of %s "
                                     "for device %s", self.queue.maxsize, event.source_name,
                                     event.device_name)

    def run(self) -> None:
        while (event := self.queue.get()) is not _STOP:
            assert isinstance(event, Event)
            self.send(event)

    def send(self, event: Event) -> None:
        body = _encoder.encode(AddEventRequest(request_id=new_id(), event=event))
        try:
            call(self.session, "POST", url_of(self.client, event_path(event)), data=body,
                 headers={"Content-Type": "application/json"}, ok=(201,))
        except EdgeXError as exc:
            self.metrics.http_export_errors.inc()
            self._complaints.warning("core-data did not take the result of %s for device %s: %s",
                                     event.source_name, event.device_name, exc)
            return
        self.metrics.http_export_size.observe(len(body))
