"""MessageBus wire codec: every envelope form EdgeX 3.1 and 4.0 put on the bus, and ours.

Accepted on input (WIRE.md): a JSON envelope whose payload is the object itself (4.x), base64 JSON
(3.x, and Go app services on 4.x), or base64 CBOR (Binary readings, EDGEX_ENCODE_ALL_EVENTS_CBOR);
and a CBOR-encoded envelope (EDGEX_MSG_CBOR_ENCODE).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import cbor2
import msgspec

from .dtos import AddEventRequest, Event, MessageEnvelope, new_id

CBOR = "application/cbor"
JSON = "application/json"


class DecodeError(ValueError):
    """A message that is not a usable EdgeX event; the text says why."""


_envelope_decoder = msgspec.json.Decoder(MessageEnvelope)
_request_decoder = msgspec.json.Decoder(AddEventRequest)
_string_decoder = msgspec.json.Decoder(str)
_json_encoder = msgspec.json.Encoder()


def decode_event(data: bytes) -> AddEventRequest:
    """Decode one MessageBus message into the AddEventRequest it carries."""
    if not data:
        raise DecodeError("empty message")
    if data.lstrip()[:1] == b"{":
        try:
            envelope = _envelope_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise DecodeError(f"invalid envelope JSON: {exc}") from None
        _check_error(envelope.error_code, envelope.payload)
        return _decode_payload(bytes(envelope.payload), envelope.content_type)
    return _decode_cbor_envelope(data)


def _check_error(error_code: int, payload: Any) -> None:
    """errorCode 1 carries a text payload: raw in CBOR, base64 (or, from some senders, plain) in JSON."""
    if not error_code:
        return
    if isinstance(payload, msgspec.Raw):
        try:
            payload = _string_decoder.decode(payload)
        except msgspec.DecodeError:
            payload = bytes(payload)
    if isinstance(payload, str):
        try:
            payload = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            payload = payload.encode()
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    raise DecodeError(f"error envelope (errorCode {error_code}): {text[:200]}")


def _decode_payload(raw: bytes, content_type: str) -> AddEventRequest:
    head = raw.lstrip()[:1]
    if head == b"{":
        return _decode_request_json(raw)
    if head == b'"':
        return _decode_bytes(_b64(_string_decoder.decode(raw)), content_type)
    raise DecodeError("envelope payload is neither an object nor base64 bytes")


def _decode_bytes(payload: bytes, content_type: str) -> AddEventRequest:
    if content_type.startswith(CBOR):
        try:
            obj = cbor2.loads(payload)
        except Exception as exc:  # cbor2 raises several unrelated types on garbage
            raise DecodeError(f"invalid CBOR payload: {exc}") from None
        return _convert_request(obj)
    return _decode_request_json(payload)


def _decode_request_json(raw: bytes) -> AddEventRequest:
    try:
        return _request_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"not an AddEventRequest: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid payload JSON: {exc}") from None


def _decode_cbor_envelope(data: bytes) -> AddEventRequest:
    try:
        envelope = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several unrelated types on garbage
        raise DecodeError(f"neither a JSON nor a CBOR envelope: {exc}") from None
    if not isinstance(envelope, dict):
        raise DecodeError("CBOR message is not an envelope map")
    _check_error(envelope.get("errorCode", 0) or 0, envelope.get("payload", b""))
    payload = envelope.get("payload")
    content_type = envelope.get("contentType") or JSON
    if isinstance(payload, dict):
        return _convert_request(payload)
    if isinstance(payload, str):
        payload = _b64(payload)
    if not isinstance(payload, bytes):
        raise DecodeError("CBOR envelope has no payload")
    return _decode_bytes(payload, content_type)


def _convert_request(obj: Any) -> AddEventRequest:
    try:
        return msgspec.convert(obj, AddEventRequest, strict=False)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"not an AddEventRequest: {exc}") from None


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("envelope payload is not valid base64") from None


def encode_event_envelope(event: Event, *, correlation_id: str = "", base64_payload: bool = False,
                          cbor_payload: bool = False) -> bytes:
    """Wrap an event in an AddEventRequest envelope as EdgeX 4.x (or, with base64_payload, 3.x) does.

    3.x receivers only understand base64 payloads; 4.x ones take both.
    """
    request = AddEventRequest(event=event, request_id=new_id())
    if cbor_payload:
        return encode_envelope(cbor2.dumps(msgspec.to_builtins(request, builtin_types=(bytes,))),
                               content_type=CBOR, correlation_id=correlation_id)
    return encode_envelope(_json_encoder.encode(request), correlation_id=correlation_id,
                           base64_payload=base64_payload)


def encode_envelope(payload: bytes, *, content_type: str = JSON, correlation_id: str = "",
                    base64_payload: bool = False) -> bytes:
    """Wrap an encoded payload in a MessageEnvelope: JSON inline (4.x), otherwise as base64 bytes."""
    if base64_payload or content_type != JSON:
        payload = _json_encoder.encode(base64.b64encode(payload).decode())
    envelope = MessageEnvelope(
        api_version="v3",
        correlation_id=correlation_id or new_id(),
        payload=msgspec.Raw(payload),
        content_type=content_type,
    )
    return _json_encoder.encode(envelope)
