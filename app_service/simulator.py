"""Device simulator: publishes EdgeX 4.x events for the simulated sensors as a device service
would, with faults injected at known steps so that detection can be scored.

Time is simulated: one event is one sample step of the device's signal (app_service.synthetic),
whatever the wall-clock rate, so a seed gives the same scenario at any speed. Event origins are
simulated time too: the run's start plus `step` sample intervals.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .codec import encode_event_envelope
from .config import Config, ConfigError, build, load
from .dtos import Event, Reading
from .readings import format_float
from .synthetic import Interval, PumpSignal, Signal, TrafficSignal, VitalsSignal, fault_schedule
from .topics import event_topic

log = logging.getLogger(__name__)

START_HOUR = 6.0  # the signals' clock starts on a Monday at 06:00, before the morning rush
HORIZON = 100_000  # steps over which faults are scheduled when a run has no fixed length


class RandomFloat(Signal):
    """device-virtual's Random-Float-Device: uniform random Float32 readings, no faults."""

    resources = ("Float32",)
    step_seconds = 1.0

    def _fault_params(self, rng: np.random.Generator) -> tuple[float, ...]:
        return ()

    def _sample(self, severity: float, fault: tuple[float, ...] | None) -> tuple[float, ...]:
        return (float(self.rng.uniform(-100.0, 100.0)),)


@dataclass(frozen=True)
class SensorType:
    """One kind of simulated device, as its EdgeX device profile and device command describe it."""

    key: str
    signal: type[Signal]
    profile: str
    source: str  # the device command whose event carries all the features
    units: dict[str, str]
    device_prefix: str = ""  # devices PREFIX-01, PREFIX-02, ...; "" for the one device `profile`
    device_service: str = "device-simulator"
    fault_every: int = 0  # one fault in each slot of this many steps (0: none)
    fault_length: tuple[int, int] = (1, 1)  # steps
    warmup: int = 0  # no fault before this step: the model's window fills first

    def device_names(self, count: int) -> list[str]:
        if not self.device_prefix:
            return [self.profile]
        return [f"{self.device_prefix}-{i:02d}" for i in range(1, count + 1)]


SENSORS = {
    sensor.key: sensor
    for sensor in (
        SensorType("pump", PumpSignal, "Pump-Monitor", "PumpStatus",
                   {"Vibration": "mm/s", "Temperature": "degC"}, "Pump",
                   fault_every=300, fault_length=(60, 120), warmup=32),
        SensorType("traffic", TrafficSignal, "Traffic-Sensor", "TrafficFlow",
                   {"VehicleCount": "vehicles/5min", "Speed": "km/h", "Occupancy": "%"}, "Traffic",
                   fault_every=150, fault_length=(6, 24), warmup=12),
        SensorType("vitals", VitalsSignal, "Patient-Monitor", "Vitals",
                   {"HeartRate": "bpm", "SpO2": "%", "RespirationRate": "breaths/min",
                    "BodyTemperature": "degC"}, "Patient",
                   fault_every=300, fault_length=(60, 120), warmup=12),
        SensorType("float", RandomFloat, "Random-Float-Device", "Float32", {"Float32": ""},
                   device_service="device-virtual"),
    )
}
APPLICATION_TYPES = ("pump", "traffic", "vitals")


@dataclass
class Device:
    """One simulated device: its signal (which holds its faults) and the topic of its events."""

    sensor: SensorType
    name: str
    signal: Signal
    topic: str

    @property
    def faults(self) -> list[Interval]:
        return self.signal.faults

    def fault_at(self, step: int) -> Interval | None:
        return next(((start, end) for start, end in self.faults if start <= step < end), None)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def make_devices(types: Iterable[str], count: int, *, seed: int, steps: int | None,
                 fault_every: int | None = None, prefix: str = "edgex") -> list[Device]:
    """`count` devices of each sensor type, their signals and faults drawn from `seed`.

    Faults are scheduled one per `fault_every` steps (default: the type's own) over `steps`
    (or HORIZON steps for a run without a fixed length).
    """
    devices = []
    horizon = steps or HORIZON
    for key in types:
        sensor = SENSORS[key]
        kind = list(SENSORS).index(key)
        every = sensor.fault_every
        if every and fault_every is not None:  # the option sets how often, not which types fault
            every = fault_every
        if every and every <= sensor.fault_length[1]:
            raise ValueError(f"{key} faults last up to {sensor.fault_length[1]} steps: one every "
                             f"{every} steps leaves no room between them")
        slots = max(0, horizon - sensor.warmup) // every if every else 0
        for i, name in enumerate(sensor.device_names(count)):
            faults = fault_schedule(_seed(seed, kind, i, 1), horizon, slots, sensor.fault_length,
                                    warmup=sensor.warmup)
            readings = sensor.signal(_seed(seed, kind, i), faults, start_hour=START_HOUR)
            topic = event_topic(prefix, sensor.profile, name, sensor.source,
                                service=sensor.device_service)
            devices.append(Device(sensor, name, readings, topic))
    return devices


class Simulator:
    """Steps every device in lock-step and builds the events a device service would publish.

    With `record`, it keeps what it sent, to score the results by: `samples[device]`, each
    step's values in the signal's resource order, and `sent`, event id -> (device, step).
    """

    def __init__(self, devices: list[Device], *, record: bool = False,
                 start_ns: int | None = None) -> None:
        self.devices = devices
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.step = 0
        self.record = record
        self.samples: dict[str, list[tuple[float, ...]]] = {device.name: [] for device in devices}
        self.sent: dict[str, tuple[str, int]] = {}

    def _origin(self, device: Device, step: int) -> int:
        return self.start_ns + round(step * device.signal.step_seconds * 1e9)

    def tick(self) -> list[tuple[Device, Event]]:
        """Every device's event for the next step."""
        step = self.step
        self.step += 1
        events = []
        for device in self.devices:
            values, _fault = device.signal.step()
            event = self._event(device, step, values)
            if self.record:
                self.samples[device.name].append(tuple(values.values()))
                self.sent[event.id] = (device.name, step)
            events.append((device, event))
        return events

    def _event(self, device: Device, step: int, values: dict[str, float]) -> Event:
        sensor, origin = device.sensor, self._origin(device, step)
        readings = [
            Reading(id=str(uuid.uuid4()), origin=origin, device_name=device.name,
                    resource_name=resource, profile_name=sensor.profile, value_type="Float32",
                    value=format_float(value), units=sensor.units[resource])
            for resource, value in values.items()
        ]
        return Event(id=str(uuid.uuid4()), device_name=device.name, profile_name=sensor.profile,
                     source_name=sensor.source, origin=origin, readings=readings)

    def truth(self) -> Iterator[dict[str, object]]:
        """The ground truth: every scheduled fault, steps [start, end) and their origins."""
        for device in self.devices:
            for start, end in device.faults:
                yield {"device": device.name, "profile": device.sensor.profile,
                       "source": device.sensor.source, "start": start, "end": end,
                       "startOrigin": self._origin(device, start),
                       "endOrigin": self._origin(device, end)}

    def write_truth(self, path: Path) -> None:
        """The ground truth as JSON lines."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(fault) + "\n" for fault in self.truth()))


def run(simulator: Simulator, publish: Callable[[str, bytes], None], *, rate: float,
        steps: int | None = None, duration: float | None = None,
        stop: threading.Event | None = None,
        on_step: Callable[[int], None] = lambda _step: None) -> int:
    """Publish `rate` events per second per device (0: as fast as possible) until `steps` steps,
    `duration` seconds or `stop`; returns the number of steps taken."""
    stop = stop or threading.Event()
    started = time.monotonic()
    taken = 0
    while steps is None or taken < steps:
        if stop.is_set() or (duration is not None and time.monotonic() - started >= duration):
            break
        on_step(simulator.step)
        for device, event in simulator.tick():
            publish(device.topic, encode_event_envelope(event))
        taken += 1
        if rate > 0:
            delay = started + taken / rate - time.monotonic()
            if delay > 0:
                stop.wait(delay)
    return taken


class Publisher:
    """A MessageBus client for publishing (paho-mqtt)."""

    def __init__(self, host: str, port: int, *, qos: int = 1,
                 credentials: dict[str, str] | None = None) -> None:
        self.host, self.port, self.qos = host, port, qos
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"device-simulator-{uuid.uuid4().hex[:8]}")
        # paho's default window of 20 unacknowledged messages throttles --rate 0 to the round trip.
        self.client.max_inflight_messages_set(1000)
        if credentials:
            self.client.username_pw_set(credentials.get("username"), credentials.get("password"))
        self._last: paho.MQTTMessageInfo | None = None

    def connect(self, timeout: float = 10) -> None:
        try:
            self.client.connect(self.host, self.port)
        except OSError as exc:
            raise ConnectionError(f"cannot reach the MQTT broker at {self.host}:{self.port}: "
                                  f"{exc}") from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                raise ConnectionError(f"the MQTT broker at {self.host}:{self.port} did not accept "
                                      f"the connection within {timeout:.0f}s")
            time.sleep(0.02)

    def publish(self, topic: str, payload: bytes) -> None:
        self._last = self.client.publish(topic, payload, qos=self.qos)

    def wait(self, timeout: float = 30) -> None:
        """Return once the broker has taken every message published so far (QoS > 0)."""
        if self._last is not None and self.qos:
            self._last.wait_for_publish(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fault_starts(devices: list[Device]) -> dict[int, list[tuple[Device, Interval]]]:
    """Faults by their first step, for announcing them as they begin."""
    starts: dict[int, list[tuple[Device, Interval]]] = {}
    for device in devices:
        for fault in device.faults:
            starts.setdefault(fault[0], []).append((device, fault))
    return starts


def sensor_types(text: str) -> list[str]:
    """--types: comma-separated sensor type keys."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in SENSORS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown sensor type(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SENSORS)}")
    return keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `simulate` and `demo`."""
    parser.add_argument("--rate", type=float, help="events per second per device (default "
                        "%(default)s; 0: as fast as the broker takes them); one event is one "
                        "sample step of simulated time")
    parser.add_argument("--devices", type=int,
                        help="devices per sensor type (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="scenario seed: signals and fault times (default 1)")
    parser.add_argument("--fault-every", type=int, metavar="STEPS",
                        help="one fault in each slot of STEPS steps per device (0: no faults; "
                        "default per type: " + ", ".join(
                            f"{s.key} {s.fault_every}" for s in SENSORS.values() if s.fault_every)
                        + ")")


def simulate_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.set_defaults(rate=1.0, devices=1)
    parser.add_argument("--host", help="MQTT broker host (default: MessageBus.Host of the "
                        "service configuration, after MESSAGEBUS_HOST)")
    parser.add_argument("--port", type=int, help="MQTT broker port (default: MessageBus.Port)")
    parser.add_argument("--types", type=sensor_types, default=list(APPLICATION_TYPES),
                        help="comma-separated sensor types: " + ", ".join(SENSORS)
                        + " (device-virtual's Random-Float-Device); default pump,traffic,vitals")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="stop after this long (default: run until interrupted)")
    parser.add_argument("--steps", type=int, help="stop after this many steps per device")
    parser.add_argument("--truth", type=Path, metavar="FILE",
                        help="write the scheduled faults here as JSON lines "
                        "(device, profile, source, start, end, startOrigin, endOrigin)")


def scenario_steps(steps: int | None, duration: float | None, rate: float) -> int | None:
    """The run's length in steps, when it is known in advance."""
    if steps:
        return steps
    if duration and rate:
        return math.ceil(duration * rate)
    return None


def service_config(path: Path) -> Config:
    """The service's configuration file when there is one, else its defaults; with the EdgeX
    environment overrides (MESSAGEBUS_HOST, ...) either way."""
    return load(path) if path.is_file() else build({}, source="environment")


def simulate(args: argparse.Namespace, config_file: Path) -> int:
    """`app-tflite-inference simulate`: publish until done or interrupted."""
    try:
        config = service_config(config_file)
    except ConfigError as exc:
        log.error("cannot read the MessageBus settings: %s", exc)
        return 1
    bus = config.message_bus
    host, port = args.host or bus.host, args.port or bus.port
    credentials = config.secret(bus.secret_name) if bus.auth_mode == "usernamepassword" else None
    steps = scenario_steps(args.steps, args.duration, args.rate)
    try:
        devices = make_devices(args.types, args.devices, seed=args.seed, steps=steps,
                               fault_every=args.fault_every, prefix=bus.base_topic_prefix)
    except ValueError as exc:
        log.error("cannot schedule faults: %s; change --fault-every", exc)
        return 2
    simulator = Simulator(devices)
    if args.truth:
        try:
            simulator.write_truth(args.truth)
        except OSError as exc:
            log.error("cannot write --truth %s: %s", args.truth, exc.strerror)
            return 1
    publisher = Publisher(host, port, qos=bus.optional.qos, credentials=credentials)
    try:
        publisher.connect()
    except ConnectionError as exc:
        log.error("%s", exc)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    starts = fault_starts(devices)

    def announce(step: int) -> None:
        for device, (start, end) in starts.get(step, ()):
            log.info("fault on %s from step %d to %d", device.name, start, end)

    log.info("publishing %d device(s) to %s:%d at %s events/s each, seed %d", len(devices), host,
             port, args.rate or "max", args.seed)
    taken = run(simulator, publisher.publish, rate=args.rate, steps=steps, duration=args.duration,
                stop=stop, on_step=announce)
    publisher.wait()
    publisher.close()
    log.info("published %d events (%d steps x %d devices)", taken * len(devices), taken,
             len(devices))
    return 0
