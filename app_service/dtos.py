"""EdgeX v3 DTOs (3.1 and 4.0 share them): readings, events, requests and the MessageEnvelope."""

from __future__ import annotations

import random
from typing import Any

import msgspec

API_VERSION = "v3"
# RFC 4122 variant bits: the first hex digit of the fourth group is 8, 9, a or b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_id() -> str:
    """A random (version 4) UUID, as EdgeX ids are. Not uuid.uuid4(): at four ids per result
    event, its os.urandom() call (which releases the GIL, handing it to the MQTT thread each
    time) cost more than the inference. Ids need to be unique, not unpredictable."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Reading(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """One value of a device resource; exactly one of value, binaryValue, objectValue is set."""

    id: str = ""
    origin: int = 0
    device_name: str = ""
    resource_name: str = ""
    profile_name: str = ""
    value_type: str
    units: str = ""
    tags: dict[str, Any] | None = None
    value: str = ""
    binary_value: bytes | None = None
    media_type: str = ""
    object_value: Any = None


class Event(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    api_version: str = ""
    id: str = ""
    device_name: str
    profile_name: str = ""
    source_name: str = ""
    origin: int = 0
    readings: list[Reading]
    tags: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # EdgeX refuses an event without apiVersion, and omit_defaults would drop a default one.
        if not self.api_version:
            self.api_version = API_VERSION


class AddEventRequest(msgspec.Struct, rename="camel", kw_only=True):
    api_version: str = API_VERSION
    request_id: str = ""
    event: Event


_ENVELOPE_NAMES = {"correlation_id": "correlationID", "request_id": "requestID"}


class MessageEnvelope(msgspec.Struct, rename=lambda name: _ENVELOPE_NAMES.get(name, _camel(name))):
    """The MessageBus wrapper. `payload` stays raw here: its form depends on the EdgeX version."""

    api_version: str = ""
    received_topic: str = ""
    correlation_id: str = ""
    request_id: str = ""
    error_code: int = 0
    payload: msgspec.Raw = msgspec.Raw(b"null")
    content_type: str = "application/json"
    # Go marks queryParams omitempty; every other field is always written.
    query_params: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class Metric(msgspec.Struct, rename="camel", kw_only=True):
    """EdgeX telemetry Metric DTO, published on edgex/telemetry/{service}/{metric}."""

    api_version: str = API_VERSION
    name: str
    fields: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    timestamp: int
