"""`app-tflite-inference demo`: the whole loop on one machine, with nothing installed first.

An MQTT broker (mosquitto if installed, else amqtt in-process), the service with every shipped
model bound, and the simulator run in this process; a MessageBus subscriber collects the result
events and shows them as plain lines (works piped, without a terminal). At the end: a summary
scored against the simulator's ground truth, and one plot per application in --output.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from . import SERVICE_KEY
from .broker import Broker, free_port, start_broker
from .codec import encode_event_envelope
from .config import Config, from_dict, load
from .inference import LOAD_ERRORS, BoundModel
from .logs import configure
from .manifest import Manifest
from .scoring import APPLICATIONS, Application, Results, base_model, detection, forecast_errors
from .simulator import (
    SENSORS,
    Device,
    Publisher,
    Simulator,
    add_arguments,
    fault_starts,
    make_devices,
    run,
    scenario_steps,
)
from .synthetic import Interval

BROKER_ENV = "APP_TFLITE_BROKER"  # auto | mosquitto | amqtt: which broker the demo starts
DRAIN_SECONDS = 30.0  # at most this long for the service to answer the last events
PROBE_SECONDS = 30.0


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.set_defaults(rate=40.0, devices=2)
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                        help="how long the simulator runs (default 60)")
    parser.add_argument("--output", type=Path, default=Path("demo-output"), metavar="DIR",
                        help="folder for the plots (default demo-output)")
    parser.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"),
                        default=os.environ.get(BROKER_ENV, "auto"),
                        help=f"MQTT broker to start (default: ${BROKER_ENV}, else auto: "
                        "mosquitto when installed, otherwise amqtt in-process)")
    parser.add_argument("--models", choices=("int8", "float"), default="int8",
                        help="which variant of the application models to bind (default int8)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between status lines (default 2)")


def locate(config_file: Path) -> tuple[Path, Path]:
    """The configuration file and the folder its relative paths (ModelsDir) start from: the
    working directory, else the source checkout this package runs from."""
    if config_file.is_file() or config_file.is_absolute():
        return config_file, Path()
    checkout = Path(__file__).resolve().parents[1]
    return checkout / config_file, checkout


def bindings(models_dir: Path, variant: str) -> tuple[list[dict[str, str]], list[str]]:
    """Inference.Bindings for every shipped model found in `models_dir`, and the missing ones."""
    suffix = "_int8" if variant == "int8" else ""
    wanted = [("linear_regression", SENSORS["float"], "Random-Float-Device")]
    wanted += [(app.model + suffix, SENSORS[app.sensor], "*") for app in APPLICATIONS]
    found, missing = [], []
    for model, sensor, device in wanted:
        if (models_dir / f"{model}.tflite").is_file():
            found.append({"Model": model, "DeviceName": device, "ProfileName": sensor.profile,
                          "SourceName": sensor.source})
        else:
            missing.append(model)
    return found, missing


def demo_config(config: Config, broker: Broker, bound: list[dict[str, str]]) -> Config:
    """The service's configuration pointed at the demo's broker, with the demo's bindings."""
    data = msgspec.to_builtins(config)
    bus = data["MessageBus"]
    bus.update(Host=broker.host, Port=broker.port, Protocol="tcp", AuthMode="none")
    bus["Optional"]["ClientId"] = f"{SERVICE_KEY}-demo"
    data["Service"]["Port"] = free_port()  # never collide with a service already running here
    data["Inference"]["Bindings"] = bound
    return from_dict(data, source="demo configuration")


def subscribe(host: str, port: int, topic: str, on_payload: Callable[[bytes], None]) -> paho.Client:
    """A MessageBus subscriber feeding every payload on `topic` to `on_payload`."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-view-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, message: on_payload(message.payload)
    client.connect(host, port)
    client.loop_start()
    return client


def probe(publisher: Publisher, results: Results, prefix: str) -> None:
    """Publish Random-Float-Device events until the service answers one: then the service and
    the result subscriber are both subscribed, and no simulated event will be missed."""
    probes = Simulator(make_devices(["float"], 1, seed=0, steps=1, prefix=prefix), record=True)
    deadline = time.monotonic() + PROBE_SECONDS
    while time.monotonic() < deadline:
        for device, event in probes.tick():
            publisher.publish(device.topic, encode_event_envelope(event))
        if results.wait(lambda: not results.unmatched.isdisjoint(probes.sent), 0.5):
            return
    raise RuntimeError(f"the service did not answer a {probes.devices[0].name} event within "
                       f"{PROBE_SECONDS:.0f}s; is linear_regression bound?")


def expected_results(devices: list[Device], steps: int, bound: list[BoundModel]) -> int:
    """How many result events the service owes for `steps` steps of every device."""
    total = 0
    for binding in bound:
        inputs = binding.loaded.manifest.inputs
        for device in devices:
            sensor = device.sensor
            if binding.selects(device.name, sensor.profile, sensor.source) and steps >= inputs.window:
                total += (steps - inputs.window) // inputs.stride + 1
    return total


def threshold(manifest: Manifest, output: str) -> float | None:
    return next((o.threshold for o in manifest.outputs if o.name == output), None)


@dataclass
class View:
    """The terminal view: events as they happen (faults injected, alarms raised and cleared)
    and a status line every so often. Plain lines, so it works piped."""

    simulator: Simulator
    results: Results
    manifests: dict[str, Manifest]  # base model name -> manifest of the bound model
    started: float = field(default_factory=time.monotonic)
    announced: int = 0  # fault starts announced up to this step
    cursors: dict[tuple[str, str], int] = field(default_factory=dict)  # next step to look at
    active: dict[tuple[str, str], int] = field(default_factory=dict)  # alarm start step
    starts: dict[int, list[tuple[Device, Interval]]] = field(init=False)

    def __post_init__(self) -> None:
        self.starts = fault_starts(self.simulator.devices)

    def say(self, kind: str, text: str) -> None:
        print(f"{time.monotonic() - self.started:6.1f}s  {kind:<8} {text}")

    def follow(self, simulation: threading.Thread, interval: float) -> None:
        """Show what happens until the simulation ends, with a status every `interval` seconds."""
        next_status = time.monotonic() + interval
        while simulation.is_alive():
            simulation.join(0.2)
            self.events()
            if simulation.is_alive() and time.monotonic() >= next_status:
                self.status()
                next_status += interval

    def devices_of(self, app: Application) -> list[Device]:
        return [d for d in self.simulator.devices if d.sensor.key == app.sensor]

    def events(self) -> None:
        for step in range(self.announced, self.simulator.step):
            for device, (start, end) in self.starts.get(step, ()):
                what = next(a.fault for a in APPLICATIONS if a.sensor == device.sensor.key)
                self.say("FAULT", f"{device.name} {what} injected at step {start} "
                                  f"(lasts until step {end})")
        self.announced = self.simulator.step
        for app in APPLICATIONS:
            if app.flag and app.model in self.manifests:
                for device in self.devices_of(app):
                    self._alarms(app, device)

    def _alarms(self, app: Application, device: Device) -> None:
        """Alarms raised and cleared since the last call, in step order: up to the first step
        whose result has not come in yet."""
        key = (app.model, device.name)
        manifest = self.manifests[app.model]
        step = self.cursors.get(key, manifest.inputs.window - 1)
        with self.results.changed:
            found = self.results.values[app.model][device.name]
            new = []
            while step in found:
                new.append((step, found[step]))
                step += 1
        self.cursors[key] = step
        for at, values in new:
            raised = values.get(app.flag, 0.0) > 0
            if raised and key not in self.active:
                self.active[key] = at
                fault = device.fault_at(at)
                truth = (f"true fault {fault[0]}-{fault[1]} (+{at - fault[0]} steps)" if fault
                         else "no fault now: false alarm?")
                self.say(app.flag_word, f"{device.name} at step {at}: {app.score} "
                                        f"{values.get(app.score, float('nan')):.3f} > "
                                        f"{threshold(manifest, app.flag)}; {truth}")
            elif not raised and key in self.active:
                since = self.active.pop(key)
                self.say("clear", f"{device.name} at step {at} ({app.flag} for {at - since} steps)")

    def status(self) -> None:
        results, sim = self.results, self.simulator
        raised = ", ".join(device for _, device in sorted(self.active)) or "none"
        self.say("status", f"step {sim.step}: events published {sim.step * len(sim.devices)}, "
                           f"inferences received {results.count}; raised now: {raised}")
        parts = []
        for app in APPLICATIONS:
            if app.forecast and app.model in self.manifests:
                parts += [self._forecast(app, device) for device in self.devices_of(app)]
        parts += [self._prediction(d) for d in sim.devices if d.sensor.key == "float"]
        if any(parts):
            self.say("", " | ".join(part for part in parts if part))

    def _forecast(self, app: Application, device: Device) -> str:
        samples = self.simulator.samples[device.name]
        forecasts = self.results.series(app.model, device.name, app.forecast)
        done = [step for step in forecasts if step + 1 < len(samples)]
        if not done:
            return ""
        step = max(done)
        actual = samples[step + 1][device.sensor.signal.resources.index(app.target)]
        return f"{device.name} forecast {forecasts[step]:.0f} vs actual {actual:.0f}"

    def _prediction(self, device: Device) -> str:
        predictions = self.results.series("linear_regression", device.name, "Prediction")
        if not predictions:
            return ""
        step = max(predictions)
        value = self.simulator.samples[device.name][step][0]
        return f"linear_regression {value:.2f} -> {predictions[step]:.2f}"


def summary(view: View) -> list[str]:
    sim, results = view.simulator, view.results
    steps, seconds = sim.step, time.monotonic() - view.started
    lines = [f"Summary: {steps} steps per device in {seconds:.1f}s, {len(sim.devices)} devices, "
             f"{steps * len(sim.devices)} events published, {results.count} inferences received"
             + (f", {results.undecodable} undecodable messages" if results.undecodable else "")]
    for app in APPLICATIONS:
        if app.model not in view.manifests:
            continue
        devices = view.devices_of(app)
        lines.append(f"{app.title}: {view.manifests[app.model].name} on "
                     f"{', '.join(d.name for d in devices)}")
        if app.flag:
            found = detection(app, devices, results)
            detected = (f"detected {found.detected} (recall {found.recall:.2f}), median delay "
                        f"{found.median_delay:.0f} steps" if found.faults else "none to detect")
            lines.append(f"  faults {found.faults}, {detected}; false alarms {found.false_alarms} "
                         f"({found.false_alarms_per_1000_steps:.2f} per 1000 steps)")
            for device, (start, end), first in found.hits:
                seen = (f"{app.flag_word} from step {first} (+{first - start})" if first is not None
                        else "MISSED")
                lines.append(f"  {device} {app.fault} at steps {start}-{end}: {seen}")
            for device, (first, last) in found.false:
                lines.append(f"  {device} {app.flag_word} at steps {first}-{last}: false alarm")
        if app.forecast:
            errors = forecast_errors(app, devices, sim.samples, results)
            incidents = sum(start < steps for d in devices for start, _ in d.faults)
            lines.append(f"  forecast MAE {errors.mae:.1f} vehicles/5min over {len(errors.errors)} "
                         f"forecasts (naive last-value forecast {errors.naive_mae:.1f}); "
                         f"{incidents} incidents injected")
    return lines


def demo(args: argparse.Namespace, config_file: Path) -> int:
    configure("WARNING")
    # Piped, stdout is block-buffered: the live view has to show lines as they happen.
    sys.stdout.reconfigure(line_buffering=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return _demo(args, config_file, stop)
    except (RuntimeError, ConnectionError, ValueError, *LOAD_ERRORS) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


def _demo(args: argparse.Namespace, config_file: Path, stop: threading.Event) -> int:
    from .service import Service  # brings the REST stack (litestar), which `simulate` never needs

    config_file, base = locate(config_file)
    planned = scenario_steps(None, args.duration, args.rate)
    devices = make_devices(SENSORS, args.devices, seed=args.seed, steps=planned,
                           fault_every=args.fault_every)
    with ExitStack() as stack:
        broker = start_broker(kind=args.broker)
        stack.callback(broker.stop)
        config = load(config_file)
        bound, missing = bindings(base / config.inference.models_dir, args.models)
        service = Service(demo_config(config, broker, bound), base)
        service.start()
        stack.callback(service.stop)
        print(f"demo: broker {broker.kind} on port {broker.port}; service with models "
              f"{', '.join(service.models.models)}"
              + (f" (not found, run `make models`: {', '.join(missing)})" if missing else ""))
        prefix = config.message_bus.base_topic_prefix
        simulator = Simulator(devices, record=True)
        results = Results(simulator.sent)
        subscriber = subscribe(broker.host, broker.port, f"{prefix}/events/device/{SERVICE_KEY}/#",
                               results.add)
        stack.callback(subscriber.loop_stop)
        stack.callback(subscriber.disconnect)
        publisher = Publisher(broker.host, broker.port)
        publisher.connect()
        stack.callback(publisher.close)
        probe(publisher, results, prefix)

        view = View(simulator, results, {base_model(name): model.manifest
                                         for name, model in service.models.models.items()})
        print(f"demo: {len(devices)} devices at {args.rate:g} events/s each for {args.duration:g}s "
              f"({planned or 'as many'} steps, seed {args.seed}); Ctrl-C stops")
        thread = threading.Thread(target=run, args=(simulator, publisher.publish), kwargs={
            "rate": args.rate, "steps": planned, "duration": args.duration, "stop": stop},
            name="simulator", daemon=True)
        thread.start()
        view.follow(thread, args.interval)
        drain = 3.0 if stop.is_set() else DRAIN_SECONDS
        publisher.wait(drain)
        owed = expected_results(devices, simulator.step, service.models.bound)
        owed += len(results.unmatched)  # the probes'
        if not results.wait(lambda: results.count >= owed, drain):
            print(f"demo: {owed - results.count} inferences still outstanding at the end")
        view.events()
        view.status()
        for line in summary(view):
            print(line)
        _plot(view, args.output)
    return 0


def _plot(view: View, folder: Path) -> None:
    from .plots import plot_application  # matplotlib: only the demo draws

    folder.mkdir(parents=True, exist_ok=True)
    for app in APPLICATIONS:
        if app.model in view.manifests:
            manifest = view.manifests[app.model]
            path = folder / f"{app.model}.png"
            plot_application(app, manifest.name, view.devices_of(app), view.simulator.samples,
                             view.results, threshold(manifest, app.flag), path)
            print(f"plot: {path}")
