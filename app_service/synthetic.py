"""Synthetic sensor signals with ground-truth faults, for training, evaluation and simulation.

One class per sensor type; one instance is one device. `step()` returns the next sample as
{EdgeX resource name: value} and whether an injected fault is active at that sample. The
same seed and fault schedule always give the same signal, so the training scripts in
models/, their evaluation and the device simulator all see the same world.

Structure shared by all three, so that a model cannot get by on a flat signal:
- a daily cycle (and a weekly one for traffic) from `start_hour`, hours since Monday 00:00;
- noise: white sensor noise plus a slower autocorrelated component;
- slow drift: sensor offsets follow a random walk over days;
- per-device differences drawn from the seed (baseline levels, capacity, free speed ...);
- faults at given step intervals [start, end): their severity ramps up over
  `onset_steps`, holds, and ramps back down over `recovery_steps` before `end`. The
  random part of the normal signal is drawn the same way with or without faults, so a
  device with faults equals its fault-free twin outside the faults and their lag.

Numpy only: the service's simulator imports this without TensorFlow.
"""

import math
from collections.abc import Sequence

import numpy as np

Interval = tuple[int, int]
"""Fault interval in steps: [start, end)."""

TAU = 2 * math.pi


def _daily(hour: float, peak_hour: float) -> float:
    """Cosine daily cycle in [-1, 1] peaking at `peak_hour`."""
    return math.cos(TAU * (hour - peak_hour) / 24)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


class Signal:
    """One simulated device; subclasses define the physics in `_sample`."""

    resources: tuple[str, ...] = ()
    step_seconds = 60.0
    onset_steps = 1
    recovery_steps = 1

    def __init__(
        self, seed: int, faults: Sequence[Interval] = (), start_hour: float = 0.0
    ) -> None:
        for start, end in faults:
            if not 0 <= start < end:
                raise ValueError(f"fault interval ({start}, {end}) must satisfy 0 <= start < end")
        self.rng = np.random.default_rng(seed)
        self.faults = sorted(faults)
        # Each fault gets its own magnitudes, drawn apart from the per-step noise stream.
        self.fault_params = [
            self._fault_params(np.random.default_rng([seed, i])) for i in range(len(faults))
        ]
        self.start_hour = start_hour
        self.steps = 0

    @property
    def hours(self) -> float:
        """Hours since Monday 00:00 at the current step."""
        return self.start_hour + self.steps * self.step_seconds / 3600

    def step(self) -> tuple[dict[str, float], bool]:
        """Advance one sample: readings by resource name, and whether a fault is active."""
        severity, params = 0.0, None
        for (start, end), fault in zip(self.faults, self.fault_params, strict=True):
            if start <= self.steps < end:
                severity = min(
                    1.0,
                    (self.steps - start + 1) / self.onset_steps,
                    (end - self.steps) / self.recovery_steps,
                )
                params = fault
                break
        values = self._sample(severity, params)
        self.steps += 1
        return dict(zip(self.resources, values, strict=True)), severity > 0

    def _fault_params(self, rng: np.random.Generator) -> tuple[float, ...]:
        raise NotImplementedError

    def _sample(self, severity: float, fault: tuple[float, ...] | None) -> tuple[float, ...]:
        raise NotImplementedError


class PumpSignal(Signal):
    """Centrifugal pump: vibration (mm/s RMS velocity) and bearing temperature (degC), 1/min.

    Load follows the daily production cycle with a random set-point wander. Vibration rises
    with load; temperature follows load and the ambient daily cycle through a thermal lag.
    Both sensors drift. Fault: a bearing defect; vibration rises by 1.5-3 mm/s with impulsive
    bursts and the bearing heats up by 5-10 degC within a few minutes.
    """

    resources = ("Vibration", "Temperature")
    step_seconds = 60.0
    onset_steps = 4

    def __init__(
        self, seed: int, faults: Sequence[Interval] = (), start_hour: float = 0.0
    ) -> None:
        super().__init__(seed, faults, start_hour)
        self.base_vibration = self.rng.uniform(1.6, 2.6)
        self.temperature_offset = self.rng.uniform(-3.0, 3.0)
        self.load_wander = 0.0
        self.vibration_drift = 0.0
        self.temperature_drift = 0.0
        self.fault_heat = 0.0
        self.bulk_temperature: float | None = None

    def _fault_params(self, rng: np.random.Generator) -> tuple[float, ...]:
        return rng.uniform(1.5, 3.0), rng.uniform(5.0, 10.0)

    def _sample(self, severity: float, fault: tuple[float, ...] | None) -> tuple[float, ...]:
        z = self.rng.standard_normal(6)
        hour = self.hours % 24
        self.load_wander = 0.97 * self.load_wander + 0.02 * z[0]
        load = min(1.0, max(0.2, 0.65 + 0.2 * _daily(hour, 14.0) + self.load_wander))
        self.vibration_drift += 0.0005 * z[1]
        self.temperature_drift += 0.002 * z[2]
        ambient = 20.0 + 4.0 * _daily(hour, 15.0)
        target = ambient + 38.0 + 20.0 * (load - 0.65) + self.temperature_offset
        if self.bulk_temperature is None:
            self.bulk_temperature = target
        self.bulk_temperature += (target - self.bulk_temperature) / 25
        vibration = self.base_vibration * (0.6 + 0.6 * load) + self.vibration_drift + 0.06 * z[3]
        heat = 0.0
        if fault is not None:
            vibration_rise, heat = fault
            vibration += severity * vibration_rise * (1 + 0.35 * abs(z[4]))
        self.fault_heat += (severity * heat - self.fault_heat) / 5
        temperature = self.bulk_temperature + self.fault_heat + self.temperature_drift + 0.15 * z[5]
        return max(0.05, vibration), temperature


class TrafficSignal(Signal):
    """Road sensor over two lanes: vehicles per 5 min, mean speed (km/h), occupancy (%).

    Demand has weekday morning and evening rush hours, a midday shoulder and quiet nights;
    weekends have one broad midday peak. Day-to-day demand wanders. Speed falls as demand
    nears capacity; occupancy follows density (flow / speed). Fault: an incident blocking a
    lane: throughput drops by up to half, speed collapses and a queue sits on the detector.
    """

    resources = ("VehicleCount", "Speed", "Occupancy")
    step_seconds = 300.0
    onset_steps = 2
    recovery_steps = 4
    LANES = 2
    VEHICLE_LENGTH_KM = 0.0055  # effective length seen by the loop detector

    def __init__(
        self, seed: int, faults: Sequence[Interval] = (), start_hour: float = 0.0
    ) -> None:
        super().__init__(seed, faults, start_hour)
        self.capacity = self.rng.uniform(0.7, 1.3)
        self.free_speed = self.rng.uniform(60.0, 90.0)
        self.demand_wander = 0.0

    def _fault_params(self, rng: np.random.Generator) -> tuple[float, ...]:
        return rng.uniform(0.35, 0.55), rng.uniform(0.55, 0.75), rng.uniform(20.0, 35.0)

    def demand(self) -> float:
        """Expected vehicles per 5 min at the current step, before incidents and noise."""
        hour = self.hours % 24
        if (self.hours // 24) % 7 >= 5:
            profile = 8.0 + 75.0 * _bump(hour, 14.0, 3.5)
        else:
            profile = (
                10.0
                + 110.0 * _bump(hour, 8.0, 1.0)
                + 90.0 * _bump(hour, 17.5, 1.4)
                + 55.0 * _bump(hour, 13.0, 3.5)
            )
        return self.capacity * profile * math.exp(self.demand_wander)

    def _sample(self, severity: float, fault: tuple[float, ...] | None) -> tuple[float, ...]:
        z = self.rng.standard_normal(4)
        self.demand_wander = 0.995 * self.demand_wander + 0.008 * z[0]
        demand = self.demand()
        throughput_loss, speed_loss, queue = fault if fault is not None else (0.0, 0.0, 0.0)
        flow = demand * (1 - severity * throughput_loss)
        count = max(0.0, round(flow + math.sqrt(flow) * z[1]))
        saturation = min(demand / (170.0 * self.capacity), 1.0)
        speed = self.free_speed * (1 - 0.6 * saturation**3) * (1 - severity * speed_loss)
        speed = max(3.0, speed + 2.5 * z[2])
        lane_flow_per_hour = count * 12 / self.LANES
        occupancy = 100 * lane_flow_per_hour / speed * self.VEHICLE_LENGTH_KM
        occupancy = min(100.0, max(0.0, occupancy + severity * queue + 0.8 * z[3]))
        return float(count), speed, occupancy


class VitalsSignal(Signal):
    """Bedside monitor, one sample per minute: heart rate (bpm), SpO2 (%), respiration rate
    (breaths/min), body temperature (degC), rounded as monitors report them.

    Each patient has their own baselines; all four follow the circadian cycle. Benign events
    that a detector must not alert on: bouts of activity (heart and breathing rate up for
    5-15 min) and single-sample SpO2 probe dropouts. Fault: a deterioration episode, either
    respiratory (SpO2 down, breathing fast) or septic (fever, tachycardia), ramping up over
    10 minutes and easing off over 10 minutes before it ends.
    """

    resources = ("HeartRate", "SpO2", "RespirationRate", "BodyTemperature")
    step_seconds = 60.0
    onset_steps = 10
    recovery_steps = 10

    def __init__(
        self, seed: int, faults: Sequence[Interval] = (), start_hour: float = 0.0
    ) -> None:
        super().__init__(seed, faults, start_hour)
        self.heart_rate = self.rng.uniform(60.0, 85.0)
        self.spo2 = self.rng.uniform(95.5, 98.5)
        self.respiration = self.rng.uniform(12.0, 17.0)
        self.temperature = self.rng.uniform(36.4, 37.0)
        self.heart_wander = 0.0
        self.activity_left = 0
        self.activity = 0.0

    def _fault_params(self, rng: np.random.Generator) -> tuple[float, ...]:
        if rng.random() < 0.5:  # respiratory: heart, SpO2, breathing, temperature deltas
            return rng.uniform(12, 20), rng.uniform(5, 9), rng.uniform(8, 12), rng.uniform(0, 0.4)
        return rng.uniform(25, 35), rng.uniform(1, 3), rng.uniform(5, 9), rng.uniform(1.2, 2.0)

    def _sample(self, severity: float, fault: tuple[float, ...] | None) -> tuple[float, ...]:
        z = self.rng.standard_normal(5)
        u = self.rng.random(4)
        hour = self.hours % 24
        awake = 7 <= hour < 23
        if self.activity_left > 0:
            self.activity_left -= 1
        elif awake and u[0] < 4 / 960:  # about four bouts per waking day
            self.activity_left = 5 + int(u[1] * 11)
            self.activity = 0.5 + 0.5 * u[2]
        activity = self.activity if self.activity_left > 0 else 0.0
        heart, desaturation, breathing, fever = fault if fault is not None else (0, 0, 0, 0)
        self.heart_wander = 0.9 * self.heart_wander + 1.2 * z[0]
        heart_rate = (
            self.heart_rate
            + 5 * _daily(hour, 15.0)
            + self.heart_wander
            + 0.8 * z[1]
            + 25 * activity
            + severity * heart
        )
        spo2 = self.spo2 + 0.6 * z[2] - severity * desaturation
        if u[3] < 1 / 240:  # the probe slips: one low reading
            spo2 -= 4 + 6 * u[1]
        respiration = (
            self.respiration + 0.8 * _daily(hour, 15.0) + z[3] + 6 * activity + severity * breathing
        )
        temperature = self.temperature + 0.3 * _daily(hour, 17.0) + 0.05 * z[4] + severity * fever
        return (
            float(round(heart_rate)),
            float(min(100, round(spo2))),
            float(max(4, round(respiration))),
            round(temperature, 1),
        )


def fault_schedule(
    seed: int, steps: int, count: int, length: tuple[int, int], warmup: int = 0
) -> list[Interval]:
    """`count` non-overlapping faults in [warmup, steps), one in each equal slot, with random
    lengths in [length[0], length[1]] and at least a quarter of each slot's slack between them."""
    slot = (steps - warmup) // max(count, 1)
    if count and length[1] >= slot:
        raise ValueError(
            f"{count} faults of up to {length[1]} steps do not fit in {steps - warmup} steps"
        )
    rng = np.random.default_rng(seed)
    faults = []
    for i in range(count):
        n = int(rng.integers(length[0], length[1] + 1))
        slack = slot - n
        start = warmup + i * slot + slack // 4 + int(rng.integers(0, slack // 2 + 1))
        faults.append((start, start + n))
    return faults


def record(signal: Signal, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Run `signal` for `steps` samples: values (steps x resources, float32) and fault flags."""
    values = np.empty((steps, len(signal.resources)), dtype=np.float32)
    active = np.empty(steps, dtype=bool)
    for i in range(steps):
        readings, active[i] = signal.step()
        values[i] = [readings[name] for name in signal.resources]
    return values, active


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """All windows of `window` consecutive rows, oldest first: (steps - window + 1, window, ...)."""
    return np.moveaxis(np.lib.stride_tricks.sliding_window_view(values, window, axis=0), -1, 1)


def window_labels(active: np.ndarray, window: int, span: int) -> np.ndarray:
    """Ground truth per window: faulty when any of its newest `span` samples is faulty.

    span = window: the window shows the fault anywhere (pump anomaly windows);
    span = 1: the current sample is faulty (vitals risk).
    """
    recent = sliding_windows(active, window)[:, window - span :]
    return recent.any(axis=1)
