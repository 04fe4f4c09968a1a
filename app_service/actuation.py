"""Actuation: rules on a model's outputs that send a command to a device (the `Actuations` config).

A rule fires when `When` (e.g. `Anomaly == true`, `AnomalyScore > 0.8`) holds for `Consecutive`
results of one source device in a row, at most once per `Cooldown` for that device. The command
goes by core-command's REST API (PUT /api/v3/device/name/{device}/{command}) or as a command
request over the MessageBus (answered on edgex/response/core-command/{requestId}).

Rules are checked on the inference worker (a dictionary lookup and a comparison); the commands
are sent by a thread of their own from a bounded queue, so a slow or failing device, core-command
or broker never holds up inference. Each outcome is logged and counted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import operator
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote

import msgspec
import paho.mqtt.client as paho
import requests

from .background import Background
from .clients import EdgeXError, call, url_of
from .config import Actuation, Client, ConfigError, duration
from .dtos import API_VERSION, Event, MessageEnvelope, Reading, new_id
from .manifest import Manifest
from .metrics import Metrics
from .mqtt import MessageBus
from .topics import escape_level, join

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
_STOP = object()
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}
_CONDITION = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*(==|!=|>=|<=|>|<)\s*(\S.*?)\s*")
_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class Condition:
    """`RESOURCE OP VALUE`: VALUE is true/false, a number, or a (quoted) string."""

    resource: str
    op: str
    value: bool | float | str

    def holds(self, reading: Reading) -> bool:
        if isinstance(self.value, bool):
            actual: bool | float | str = reading.value == "true"
        elif isinstance(self.value, float):
            try:
                actual = float(reading.value)
            except ValueError:
                return False
            if math.isnan(actual):
                return False
        else:
            actual = reading.value
        return _OPERATORS[self.op](actual, self.value)


def parse_condition(text: str, key: str = "When") -> Condition:
    match = _CONDITION.fullmatch(text)
    if match is None:
        raise ConfigError(f"{key}: {text!r} is not RESOURCE OP VALUE with OP one of "
                          f"{' '.join(_OPERATORS)}, e.g. \"AnomalyScore > 0.8\"")
    resource, op, raw = match.groups()
    value: bool | float | str
    if raw in ("true", "false"):
        value = raw == "true"
    elif len(raw) > 1 and raw[0] == raw[-1] and raw[0] in "'\"":
        value = raw[1:-1]
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    if not isinstance(value, float) and op not in ("==", "!="):
        raise ConfigError(f"{key}: {text!r} compares {value!r} with {op}; only numbers can be "
                          "ordered, use == or !=")
    return Condition(resource, op, value)


@dataclass
class Rule:
    settings: Actuation
    condition: Condition
    cooldown: float
    timeout: float
    streaks: dict[str, int] = field(default_factory=dict)
    fired: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.settings.name

    def observe(self, event: Event, now: float) -> str | None:
        """The device to command if this result makes the rule fire, else None."""
        reading = next((r for r in event.readings if r.resource_name == self.condition.resource), None)
        if reading is None:
            return None
        device = event.device_name
        if not self.condition.holds(reading):
            self.streaks[device] = 0
            return None
        streak = self.streaks.get(device, 0) + 1
        if streak < self.settings.consecutive:
            self.streaks[device] = streak
            return None
        self.streaks[device] = 0
        if now - self.fired.get(device, -math.inf) < self.cooldown:
            return None
        self.fired[device] = now
        return self.settings.device.replace("{device}", device).replace("{model}", event.source_name)


def build_rule(settings: Actuation, index: int, manifests: Mapping[str, Manifest]) -> Rule:
    """A rule from its config, checked against the loaded models' outputs."""
    key = f"Actuations[{index}] ({settings.name})"
    condition = parse_condition(settings.when, f"{key}.When")
    models = [m for name, m in manifests.items() if fnmatchcase(name, settings.model)]
    if not models:
        raise ConfigError(f"{key}.Model: {settings.model!r} matches no loaded model "
                          f"({', '.join(sorted(manifests)) or 'none'})")
    for manifest in models:
        outputs = {output.name: output for output in manifest.outputs}
        output = outputs.get(condition.resource)
        if output is None:
            raise ConfigError(f"{key}.When: model {manifest.name} has no output "
                              f"{condition.resource!r} (outputs: {', '.join(outputs)})")
        kind = {"Bool": bool, "String": str}.get(output.value_type, float)
        if output.value_type.endswith("Array") or not isinstance(condition.value, kind):
            raise ConfigError(f"{key}.When: output {condition.resource} of {manifest.name} is "
                              f"{output.value_type}, it cannot be compared with {condition.value!r}")
    if settings.via not in ("rest", "messagebus"):
        raise ConfigError(f"{key}.Via: {settings.via!r} is not rest or messagebus")
    if settings.consecutive < 1:
        raise ConfigError(f"{key}.Consecutive: must be at least 1")
    if not settings.command:
        raise ConfigError(f"{key}.Command: names no device command")
    return Rule(settings, condition, duration(settings.cooldown, key=f"{key}.Cooldown"),
                duration(settings.timeout, key=f"{key}.Timeout"))


@dataclass(frozen=True)
class Command:
    rule: Rule
    device: str


class Actuator(Background):
    def __init__(self, actuations: list[Actuation], manifests: Mapping[str, Manifest],
                 metrics: Metrics, core_command: Client, bus: MessageBus, *, prefix: str = "edgex",
                 escape: bool = False, base64_payload: bool = False,
                 session: requests.Session | None = None) -> None:
        super().__init__("actuation")
        self.rules = [build_rule(a, i, manifests) for i, a in enumerate(actuations)]
        self.metrics = metrics
        self.core_command = core_command
        self.bus = bus
        self.prefix = prefix
        self.escape = escape
        self.base64_payload = base64_payload
        self.session = session or requests.Session()
        self.queue: queue.Queue[Command | object] = queue.Queue(QUEUE_SIZE)
        self._pending: dict[str, tuple[threading.Event, list[str | None]]] = {}
        if any(rule.settings.via == "messagebus" for rule in self.rules):
            responses = join(prefix, "response/core-command/+")
            # Added before the bus connects: it subscribes to bus.topics on every (re)connect.
            bus.topics.append(responses)
            bus.client.message_callback_add(responses, self._response)

    def stop(self, timeout: float | None = None) -> None:
        """Send the commands already queued, then stop."""
        self.queue.put(_STOP)
        super().stop(timeout)

    def on_result(self, event: Event) -> None:
        """Called with every result event, on the inference worker."""
        now = time.monotonic()
        for rule in self.rules:
            if not fnmatchcase(event.source_name, rule.settings.model):
                continue
            device = rule.observe(event, now)
            if device is None:
                continue
            try:
                self.queue.put_nowait(Command(rule, device))
            except queue.Full:
                self._outcome(rule, device, f"dropped: {QUEUE_SIZE} commands already waiting", None)

    def run(self) -> None:
        while (command := self.queue.get()) is not _STOP:
            assert isinstance(command, Command)
            self.execute(command)

    def execute(self, command: Command) -> None:
        rule, device = command.rule, command.device
        started = time.perf_counter()
        failure = None
        try:
            if rule.settings.via == "rest":
                self._rest(rule, device)
            else:
                self._messagebus(rule, device)
        except EdgeXError as exc:
            failure = str(exc)
        self._outcome(rule, device, failure, time.perf_counter() - started)

    def _outcome(self, rule: Rule, device: str, failure: str | None, latency: float | None) -> None:
        what = f"actuation {rule.name}: {rule.settings.command} {rule.settings.settings} on {device}"
        if latency is not None:
            self.metrics.actuation_latency.labels(rule.name).observe(latency)
        if failure is None:
            self.metrics.actuations.labels(rule.name, "success").inc()
            log.info("%s succeeded in %.0f ms", what, (latency or 0) * 1000)
        else:
            self.metrics.actuations.labels(rule.name, "failure").inc()
            log.error("%s failed: %s", what, failure)

    def _rest(self, rule: Rule, device: str) -> None:
        path = f"device/name/{quote(device, safe='')}/{quote(rule.settings.command, safe='')}"
        call(self.session, "PUT", url_of(self.core_command, path), json=rule.settings.settings,
             timeout=rule.timeout)

    def _messagebus(self, rule: Rule, device: str) -> None:
        names = (device, rule.settings.command)
        if self.escape:
            names = tuple(escape_level(name) for name in names)
        topic = join(self.prefix, "core/command/request", *names, "set")
        request_id = new_id()
        payload = _json.encode(rule.settings.settings)
        if self.base64_payload:
            payload = _json.encode(base64.b64encode(payload).decode())
        envelope = MessageEnvelope(api_version=API_VERSION, correlation_id=new_id(),
                                   request_id=request_id, payload=msgspec.Raw(payload))
        answered = threading.Event()
        answer: list[str | None] = []
        self._pending[request_id] = (answered, answer)
        try:
            info = self.bus.publish(topic, _json.encode(envelope))
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise EdgeXError(f"MessageBus did not take the command request on {topic}: "
                                 f"{paho.error_string(info.rc)}")
            if not answered.wait(rule.timeout):
                raise EdgeXError(f"no answer from core-command on {topic} within {rule.timeout}s")
        finally:
            self._pending.pop(request_id, None)
        if answer[0] is not None:
            raise EdgeXError(f"core-command answered on the MessageBus: {answer[0]}")

    def _response(self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        """Runs on paho's network thread: hand the answer to the waiting sender."""
        self.bus.ack(message)
        pending = self._pending.get(message.topic.rsplit("/", 1)[-1])
        if pending is None:
            return  # another service's command, or one that timed out
        answered, answer = pending
        answer.append(_error_text(message.payload))
        answered.set()


def _error_text(data: bytes) -> str | None:
    """None for a successful command response envelope, else what went wrong."""
    try:
        envelope = msgspec.json.decode(data, type=MessageEnvelope)
    except msgspec.MsgspecError as exc:
        return f"unreadable response envelope: {exc}"
    if not envelope.error_code:
        return None
    try:
        payload = msgspec.json.decode(envelope.payload)
    except msgspec.DecodeError:
        payload = bytes(envelope.payload).decode(errors="replace")
    if isinstance(payload, str):
        with contextlib.suppress(binascii.Error, ValueError):
            payload = base64.b64decode(payload, validate=True).decode(errors="replace")
    return f"errorCode {envelope.error_code}: {payload}"
