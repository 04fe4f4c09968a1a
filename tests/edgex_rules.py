"""What EdgeX rejects beyond its OpenAPI schemas: the Go DTO validation in go-mod-core-contracts.

Each function returns a list of problems, empty when EdgeX would accept the DTO.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlparse

_GO_BOOL = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
_INT_BITS = {"Int8": 8, "Int16": 16, "Int32": 32, "Int64": 64}
_UINT_BITS = {"Uint8": 8, "Uint16": 16, "Uint32": 32, "Uint64": 64}
_FLOAT_MAX = {"Float32": 3.4028234663852886e38, "Float64": 1.7976931348623157e308}
_GO_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_GO_DURATION = re.compile(r"([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")


def _blank(value: Any) -> bool:
    # edgex-dto-none-empty-string: present, a string, and not only white space
    return not isinstance(value, str) or not value.strip()


def value_problem(value_type: str, value: str) -> str | None:
    """Why `value` is not a valid string form of `value_type` (dtos.ValidateValue), or None."""
    if value_type.endswith("Array"):
        if not (value.startswith("[") and value.endswith("]")):
            return f"{value!r} is not a bracketed {value_type}"
        element_type = value_type.removesuffix("Array")
        for element in value[1:-1].split(","):
            if problem := value_problem(element_type, element.strip()):
                return f"{value_type} element: {problem}"
        return None
    if value_type == "Bool":
        ok = value in _GO_BOOL
    elif value_type in _INT_BITS:
        bits = _INT_BITS[value_type]
        ok = bool(re.fullmatch(r"[+-]?\d+", value)) and -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)
    elif value_type in _UINT_BITS:
        ok = bool(re.fullmatch(r"\d+", value)) and int(value) < 2 ** _UINT_BITS[value_type]
    elif value_type in _FLOAT_MAX:
        ok = bool(_GO_FLOAT.fullmatch(value))
        ok = ok and (not math.isfinite(float(value)) or abs(float(value)) <= _FLOAT_MAX[value_type])
    else:
        return None
    return None if ok else f"{value!r} is not a {value_type}"


def reading_problems(reading: dict[str, Any], where: str) -> list[str]:
    problems = [
        f"{where}.{field} is missing or empty"
        for field in ("deviceName", "resourceName", "profileName", "valueType")
        if _blank(reading.get(field))
    ]
    if not reading.get("origin"):
        problems.append(f"{where}.origin is missing or 0")
    value_type = reading.get("valueType", "")
    if value_type == "Binary":
        if reading.get("binaryValue") and _blank(reading.get("mediaType")):
            problems.append(f"{where}: a Binary reading needs mediaType")
    elif value_type not in ("Object", "ObjectArray"):
        if not isinstance(reading.get("value"), str):
            problems.append(f"{where}: a {value_type} reading needs a string value")
        elif problem := value_problem(value_type, reading["value"]):
            problems.append(f"{where}.value: {problem}")
    return problems


def event_problems(event: dict[str, Any]) -> list[str]:
    """dtos.Event validation, as core-data applies it to an AddEventRequest."""
    problems = [
        f"event.{field} is missing or empty"
        for field in ("apiVersion", "deviceName", "profileName", "sourceName")
        if _blank(event.get(field))
    ]
    if not event.get("id"):
        problems.append("event.id is missing or empty (a UUID is required)")
    if not event.get("origin"):
        problems.append("event.origin is missing or 0")
    readings = event.get("readings") or []
    if not readings:
        problems.append("event.readings is empty (at least one reading is required)")
    for i, reading in enumerate(readings):
        problems += reading_problems(reading, f"event.readings[{i}]")
    return problems


def profile_problems(profile: dict[str, Any]) -> list[str]:
    """dtos.DeviceProfile validation (ValidateDeviceProfileDTO), as core-metadata applies it."""
    problems = ["profile name is missing or empty"] if _blank(profile.get("name")) else []
    resources = {r.get("name"): r for r in profile.get("deviceResources") or []}
    for kind, items in (
        ("resource", profile.get("deviceResources")),
        ("command", profile.get("deviceCommands")),
    ):
        names = [item.get("name") for item in items or []]
        problems += [f"device {kind} {n!r} is duplicated" for n in sorted(set(names)) if names.count(n) > 1]
        problems += [f"a device {kind} has no name" for n in names if _blank(n)]
    for command in profile.get("deviceCommands") or []:
        for operation in command.get("resourceOperations") or []:
            resource = resources.get(operation.get("deviceResource"))
            if resource is None:
                problems.append(
                    f"device command {command.get('name')!r} uses unknown resource "
                    f"{operation.get('deviceResource')!r}"
                )
                continue
            access = resource.get("properties", {}).get("readWrite")
            if access != "RW" and access != command.get("readWrite"):
                problems.append(
                    f"device command {command.get('name')!r} is {command.get('readWrite')} but resource "
                    f"{resource['name']!r} is {access}"
                )
    return problems


def device_problems(device: dict[str, Any]) -> list[str]:
    """dtos.Device validation for a new device."""
    problems = [
        f"device {field} is missing or empty"
        for field in ("name", "serviceName")
        if _blank(device.get(field))
    ]
    for i, auto_event in enumerate(device.get("autoEvents") or []):
        if not _GO_DURATION.fullmatch(str(auto_event.get("interval", ""))):
            problems.append(f"device autoEvents[{i}].interval is not a Go duration")
        if _blank(auto_event.get("sourceName")):
            problems.append(f"device autoEvents[{i}].sourceName is missing or empty")
    return problems


def device_service_problems(service: dict[str, Any]) -> list[str]:
    """dtos.DeviceService validation for a new device service."""
    problems = ["device service name is missing or empty"] if _blank(service.get("name")) else []
    address = urlparse(str(service.get("baseAddress", "")))
    if not (address.scheme and address.netloc):
        problems.append(f"device service baseAddress {service.get('baseAddress')!r} is not a URI")
    return problems


def update_problems(kind: str, update: dict[str, Any]) -> list[str]:
    """Update DTOs name their target by id or name (required_without)."""
    if _blank(update.get("name")) and _blank(update.get("id")):
        return [f"{kind} update names neither id nor name"]
    return []


def registration_problems(registration: dict[str, Any]) -> list[str]:
    """dtos.Registration validation, as core-keeper applies it."""
    problems = [
        f"registration.{field} is missing or empty"
        for field in ("serviceId", "host")
        if _blank(registration.get(field))
    ]
    if not registration.get("port"):
        problems.append("registration.port is missing or 0")
    health = registration.get("healthCheck") or {}
    if not _GO_DURATION.fullmatch(str(health.get("interval", ""))):
        problems.append(f"registration.healthCheck.interval {health.get('interval')!r} is not a Go duration")
    problems += [
        f"registration.healthCheck.{field} is missing or empty"
        for field in ("path", "type")
        if _blank(health.get(field))
    ]
    return problems


def consul_registration_problems(body: Any) -> list[str]:
    """Consul has no spec here: check the agent service registration an EdgeX service sends."""
    if not isinstance(body, dict):
        return ["consul registration body is not a JSON object"]
    problems = [
        f"consul registration {field} is missing or empty"
        for field in ("ID", "Name")
        if _blank(body.get(field))
    ]
    port = body.get("Port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.append(f"consul registration Port {port!r} is not a port number")
    check = body.get("Check")
    if not isinstance(check, dict):
        return [*problems, "consul registration has no Check"]
    url = urlparse(str(check.get("HTTP", "")))
    if not (url.scheme in ("http", "https") and url.netloc and url.path.endswith("/api/v3/ping")):
        problems.append(f"consul Check.HTTP {check.get('HTTP')!r} is not an http URL ending /api/v3/ping")
    if not _GO_DURATION.fullmatch(str(check.get("Interval", ""))):
        problems.append(f"consul Check.Interval {check.get('Interval')!r} is not a duration")
    return problems
