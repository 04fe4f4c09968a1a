"""The synthetic data sets each shipped model is trained and evaluated on (numpy only).

Training and held-out evaluation use disjoint device seeds, so evaluation sees devices
(pumps, roads, patients) the model never saw. Everything is seeded: the same call gives
the same arrays on every machine.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_service.synthetic import (
    PumpSignal,
    Signal,
    TrafficSignal,
    VitalsSignal,
    fault_schedule,
    record,
    sliding_windows,
    window_labels,
)


@dataclass(frozen=True)
class Application:
    name: str
    signal: type[Signal]
    window: int
    label_span: int  # see window_labels: how recent a fault sample must be to label a window
    days: float  # simulated days per device
    faults_per_day: float
    fault_length: tuple[int, int]  # steps
    train_seeds: range
    test_seeds: range

    @property
    def steps(self) -> int:
        return int(self.days * 86400 / self.signal.step_seconds)

    def device(self, seed: int, with_faults: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """One device's whole recording: values (steps x features) and fault flags."""
        count = round(self.days * self.faults_per_day) if with_faults else 0
        faults = fault_schedule(seed, self.steps, count, self.fault_length, warmup=self.window)
        return record(self.signal(seed, faults, start_hour=(seed % 7) * 24.0), self.steps)

    def windows(
        self, seeds: range, with_faults: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model-ready raw windows (n x window x features), the label of each window, and the
        values of the sample after each window (NaN after a device's last window)."""
        xs, labels, following = [], [], []
        for seed in seeds:
            values, active = self.device(seed, with_faults)
            xs.append(sliding_windows(values, self.window))
            labels.append(window_labels(active, self.window, self.label_span))
            tail = np.full((1, values.shape[1]), np.nan, dtype=np.float32)
            following.append(np.concatenate([values[self.window :], tail]))
        return np.concatenate(xs), np.concatenate(labels), np.concatenate(following)


PUMP = Application(
    "pump_anomaly", PumpSignal, window=32, label_span=32, days=14, faults_per_day=1.0,
    fault_length=(60, 240), train_seeds=range(8), test_seeds=range(1000, 1004),
)
TRAFFIC = Application(
    "traffic_forecast", TrafficSignal, window=12, label_span=1, days=42, faults_per_day=0.5,
    fault_length=(6, 24), train_seeds=range(8), test_seeds=range(1000, 1004),
)
VITALS = Application(
    "vitals_risk", VitalsSignal, window=12, label_span=1, days=7, faults_per_day=1.0,
    fault_length=(60, 240), train_seeds=range(24), test_seeds=range(1000, 1008),
)
