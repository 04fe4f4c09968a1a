"""The service's results matched to the simulated steps they answer, and scored against the
simulator's ground truth: faults detected (recall), false alarms, forecast error.
"""

from __future__ import annotations

import statistics
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from .codec import DecodeError, decode_event
from .readings import ReadingError, parse_value
from .simulator import Device
from .synthetic import Interval


@dataclass(frozen=True)
class Application:
    """One of the shipped applications: its sensor type, model and the outputs that matter."""

    sensor: str  # simulator sensor type key
    model: str  # model name without the _int8 suffix
    title: str
    score: str = ""  # output holding the anomaly/risk score
    flag: str = ""  # Bool output raised on an anomaly/alert
    forecast: str = ""  # output holding the forecast of `target` at the next step
    target: str = ""
    tolerance: int = 0  # steps after a fault's end in which an alarm still counts as a detection
    fault: str = "fault"  # what an injected fault is, in words

    @property
    def flag_word(self) -> str:
        """What a raised flag is called in the terminal view: ANOMALY, ALERT."""
        return self.flag.upper()


APPLICATIONS = (
    # The pump's bearing stays hot for a few steps after a fault, and the model's 32-step window
    # still holds fault samples for 31 steps after it.
    Application("pump", "pump_anomaly", "Pump predictive maintenance", score="AnomalyScore",
                flag="Anomaly", tolerance=32 + 20, fault="bearing fault"),
    Application("traffic", "traffic_forecast", "Traffic flow forecast",
                forecast="ForecastVehicleCount", target="VehicleCount", fault="lane-blocking incident"),
    Application("vitals", "vitals_risk", "Patient deterioration risk", score="RiskScore",
                flag="Alert", tolerance=12 + 8, fault="deterioration"),
)


def base_model(name: str) -> str:
    return name.removesuffix("_int8")


class Results:
    """Result events collected from the MessageBus: model -> device -> step -> {output: value}.

    `sent` maps the simulator's event ids to (device, step); a result names its source event in
    the `sourceEventId` tag. Results for other events are counted in `unmatched`, messages
    that are no result event in `undecodable`.
    """

    def __init__(self, sent: dict[str, tuple[str, int]]) -> None:
        self.sent = sent
        self.values: dict[str, dict[str, dict[int, dict[str, float]]]] = defaultdict(
            lambda: defaultdict(dict))
        self.count = 0
        self.unmatched: set[str] = set()
        self.undecodable = 0
        self.changed = threading.Condition()

    def add(self, payload: bytes) -> None:
        """Take one result message (runs on the MQTT client's thread)."""
        try:
            event = decode_event(payload).event
            source = str((event.tags or {}).get("sourceEventId", ""))
            values = {reading.resource_name: float(parse_value(reading))
                      for reading in event.readings}
        except (DecodeError, ReadingError, TypeError):
            self.undecodable += 1
            return
        with self.changed:
            self.count += 1
            where = self.sent.get(source)
            if where is None:
                self.unmatched.add(source)
            else:
                device, step = where
                self.values[base_model(event.source_name)][device][step] = values
            self.changed.notify_all()

    def wait(self, done: Callable[[], object], timeout: float) -> bool:
        """Wait until done() holds (checked on every result) or `timeout` seconds pass."""
        with self.changed:
            return self.changed.wait_for(done, timeout)

    def series(self, model: str, device: str, output: str) -> dict[int, float]:
        return {step: values[output]
                for step, values in self.values[model][device].items() if output in values}


@dataclass
class Detection:
    """Fault detection over some devices. A fault counts as detected when an alarm is raised at
    a step in [start, end + tolerance); an alarm episode (a run of alarmed steps) that overlaps
    no such interval is a false alarm."""

    faults: int = 0
    detected: int = 0
    false_alarms: int = 0
    steps: int = 0  # device-steps with a result
    delays: list[int] = field(default_factory=list)
    hits: list[tuple[str, Interval, int | None]] = field(default_factory=list)  # first alarm
    false: list[tuple[str, Interval]] = field(default_factory=list)  # alarm episodes

    @property
    def recall(self) -> float:
        return self.detected / self.faults if self.faults else 1.0

    @property
    def false_alarms_per_1000_steps(self) -> float:
        return 1000 * self.false_alarms / self.steps if self.steps else 0.0

    @property
    def median_delay(self) -> float:
        return statistics.median(self.delays) if self.delays else float("nan")

    def add(self, device: str, flags: dict[int, float], faults: list[Interval],
            tolerance: int) -> None:
        """Score one device: `flags` are its alarm outputs by step, `faults` its true faults."""
        if not flags:
            return
        first, last = min(flags), max(flags)
        self.steps += len(flags)
        alarmed = sorted(step for step, value in flags.items() if value)
        zones = [(start, end + tolerance) for start, end in faults]
        for (start, end), (low, high) in zip(faults, zones, strict=True):
            if start < first or end > last + 1:
                continue  # outside the scored steps: the run ended or started around it
            self.faults += 1
            first_alarm = next((step for step in alarmed if low <= step < high), None)
            self.hits.append((device, (start, end), first_alarm))
            if first_alarm is not None:
                self.detected += 1
                self.delays.append(first_alarm - start)
        for episode in alarm_episodes(alarmed):
            if not any(episode[0] < high and episode[1] > low for low, high in zones):
                self.false_alarms += 1
                self.false.append((device, episode))


def detection(app: Application, devices: list[Device], results: Results) -> Detection:
    """How well `app`'s model found the faults injected into `devices`."""
    found = Detection()
    for device in devices:
        found.add(device.name, results.series(app.model, device.name, app.flag), device.faults,
                  app.tolerance)
    return found


def alarm_episodes(alarmed: list[int]) -> list[Interval]:
    """Runs of consecutive alarmed steps, as [first, last + 1)."""
    runs: list[Interval] = []
    for step in alarmed:
        if runs and runs[-1][1] == step:
            runs[-1] = (runs[-1][0], step + 1)
        else:
            runs.append((step, step + 1))
    return runs


@dataclass
class Forecasts:
    """Forecast error against what came next, beside the naive forecast (the last value)."""

    errors: list[float] = field(default_factory=list)
    naive_errors: list[float] = field(default_factory=list)

    def add(self, forecasts: dict[int, float], actual: list[float]) -> None:
        """`forecasts[step]` predicts actual[step + 1]."""
        for step, forecast in forecasts.items():
            if step + 1 < len(actual):
                self.errors.append(abs(forecast - actual[step + 1]))
                self.naive_errors.append(abs(actual[step] - actual[step + 1]))

    @property
    def mae(self) -> float:
        return statistics.fmean(self.errors) if self.errors else float("nan")

    @property
    def naive_mae(self) -> float:
        return statistics.fmean(self.naive_errors) if self.naive_errors else float("nan")


def forecast_errors(app: Application, devices: list[Device],
                    samples: dict[str, list[tuple[float, ...]]], results: Results) -> Forecasts:
    """`app`'s forecasts for `devices` against what the simulator sent next (`samples`)."""
    forecasts = Forecasts()
    for device in devices:
        column = device.sensor.signal.resources.index(app.target)
        actual = [values[column] for values in samples[device.name]]
        forecasts.add(results.series(app.model, device.name, app.forecast), actual)
    return forecasts
