"""The inference pipeline: an ordered list of functions, each taking the data and returning the
next step's data, or None to stop (as in EdgeX's app-functions SDK).

The standard pipeline takes a raw MessageBus payload to the result events it produces:
size check -> decode -> default the reading fields -> drop our own output -> run the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import SERVICE_KEY
from .codec import DecodeError, decode_event
from .dtos import AddEventRequest, Event
from .inference import InputError, ModelSet
from .metrics import Metrics

Step = Callable[[Any], Any]


class Rejected(Exception):
    """Input the pipeline refuses; `reason` is a short label for the metric."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Pipeline:
    steps: list[Step]

    def __call__(self, data: Any) -> Any:
        for step in self.steps:
            data = step(data)
            if data is None:
                return None
        return data


def limit_size(max_bytes: int) -> Step:
    def check(payload: bytes) -> bytes:
        if len(payload) > max_bytes:
            raise Rejected("oversized", f"message of {len(payload)} bytes is over "
                                        f"Inference.MaxMessageSize ({max_bytes})")
        return payload
    return check


def decode(payload: bytes) -> AddEventRequest:
    try:
        return decode_event(payload)
    except DecodeError as exc:
        raise Rejected("malformed", str(exc)) from None


def complete_event(request: AddEventRequest) -> Event:
    """Check the event and default each reading's names from it.

    EdgeX 4.1 may leave out empty names, and EDGEX_OPTIMIZE_EVENT_PAYLOAD strips each reading's
    id, origin, deviceName, profileName and resourceName.
    """
    event = request.event
    if not event.device_name:
        raise Rejected("malformed", "event has no deviceName")
    if not event.readings:
        raise Rejected("malformed", f"event from device {event.device_name!r} has no readings")
    for reading in event.readings:
        reading.device_name = reading.device_name or event.device_name
        reading.profile_name = reading.profile_name or event.profile_name
        reading.resource_name = reading.resource_name or event.source_name
        reading.origin = reading.origin or event.origin
    return event


def skip_own_results(event: Event) -> Event | None:
    """Our results can come back to us (a subscription to events/#, core-data's re-publish)."""
    if event.tags and event.tags.get("generatedBy") == SERVICE_KEY:
        return None
    return event


def run_models(models: ModelSet, metrics: Metrics) -> Step:
    def run(event: Event) -> list[Event]:
        results = []
        try:
            for result in models.infer(event):
                model = result.source_name
                metrics.inference_latency.labels(model).observe(
                    result.tags["inferenceLatencyUs"] / 1e6)
                results.append(result)
        except InputError as exc:
            raise Rejected("bad-value", str(exc)) from None
        return results
    return run


def event_pipeline(models: ModelSet, metrics: Metrics, max_message_size: int) -> Pipeline:
    return Pipeline([limit_size(max_message_size), decode, complete_event, skip_own_results,
                     run_models(models, metrics)])
