"""Test-side MQTT peers and the service run as a real process."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from app_service.broker import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = "edgex/events/device/app-tflite-inference/#"


class Peer:
    """An MQTT client that publishes and collects messages, like a device service or core-data."""

    def __init__(self, port: int, *subscriptions: str, username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4()}")
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(cert_reqs=ssl.CERT_NONE)
            self.client.tls_insecure_set(True)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        for topic in subscriptions:
            self.client.subscribe(topic, qos=1)
        if subscriptions:
            # the broker handles a connection's packets in order: once this publish is
            # acknowledged, the subscriptions above are in place
            self.client.publish("test/sync", b"", qos=1).wait_for_publish(5)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def take(self, count: int = 1, timeout: float = 10) -> list[paho.MQTTMessage]:
        deadline = time.monotonic() + timeout
        taken = []
        while len(taken) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} messages, got {len(taken)} in {timeout}s")
            try:
                taken.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return taken

    def assert_silent(self, seconds: float = 1.0) -> None:
        """Nothing more arrives within `seconds` (a wait for absence, not a speed check)."""
        try:
            extra = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {extra.topic}: {extra.payload[:200]!r}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def device_event(device: str, profile: str, source: str, readings: dict[str, tuple[str, str]],
                 origin: int = 1733300000000000000) -> dict[str, Any]:
    """An AddEventRequest as a device service builds it; readings: resource -> (valueType, value)."""
    return {
        "apiVersion": "v3",
        "requestId": str(uuid.uuid4()),
        "event": {
            "apiVersion": "v3",
            "id": str(uuid.uuid4()),
            "deviceName": device,
            "profileName": profile,
            "sourceName": source,
            "origin": origin,
            "readings": [
                {"id": str(uuid.uuid4()), "origin": origin, "deviceName": device,
                 "resourceName": resource, "profileName": profile, "valueType": value_type,
                 "value": value}
                for resource, (value_type, value) in readings.items()
            ],
        },
    }


def envelope(request: dict[str, Any], *, base64_payload: bool = False) -> bytes:
    """A 4.x envelope (payload object), or with base64_payload a 3.x one."""
    payload: Any = request
    if base64_payload:
        payload = base64.b64encode(json.dumps(request, separators=(",", ":")).encode()).decode()
    return json.dumps({
        "apiVersion": "v3", "receivedTopic": "", "correlationID": str(uuid.uuid4()),
        "requestID": "", "errorCode": 0, "payload": payload, "contentType": "application/json",
    }).encode()


def device_topic(device: str, profile: str, source: str, service: str = "device-virtual") -> str:
    return f"edgex/events/device/{service}/{profile}/{device}/{source}"


def float_event(value: str, device: str = "Random-Float-Device") -> dict[str, Any]:
    return device_event(device, "Random-Float-Device", "Float32", {"Float32": ("Float32", value)})


def payload_of(message: paho.MQTTMessage) -> dict[str, Any]:
    """The AddEventRequest inside a result envelope (object or base64 payload)."""
    body = json.loads(message.payload)
    payload = body["payload"]
    return json.loads(base64.b64decode(payload)) if isinstance(payload, str) else payload


@dataclass
class ServiceProcess:
    process: subprocess.Popen
    log_path: Path
    rest_port: int
    env: dict[str, str] = field(repr=False)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(text) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited ({self.process.returncode}):\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"service never logged {text!r}:\n{self.log}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"service did not stop on {sig!r}:\n{self.log}") from None


def start_service(broker_port: int, workdir: Path, *args: str, env: dict[str, str] | None = None,
                  wait: str | None = "connected to MessageBus",
                  bus_env: bool = True) -> ServiceProcess:
    """Run `python -m app_service` from the repo root, as a user would, on the given broker.

    With bus_env=False the broker's address is not given by MESSAGEBUS_* variables (a
    configuration provider's common configuration has to give it)."""
    rest_port = free_port()
    bus = {"MESSAGEBUS_HOST": "127.0.0.1", "MESSAGEBUS_PORT": str(broker_port)} if bus_env else {}
    full_env = {
        **os.environ,
        **bus,
        "MESSAGEBUS_OPTIONAL_CLIENTID": f"app-tflite-inference-{uuid.uuid4().hex[:8]}",
        "SERVICE_PORT": str(rest_port),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = workdir / f"service-{rest_port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "app_service", *args], cwd=REPO,
                                   env=full_env, stdout=log, stderr=subprocess.STDOUT)
    service = ServiceProcess(process, log_path, rest_port, full_env)
    if wait:
        service.wait_for_log(wait)
    return service
