"""One PNG per application: each device's signal with its true faults, and under it the model's
score, threshold and raised alarms (for the forecaster: forecast against actual).

matplotlib is the `demo` extra: the demo imports this module only when it draws. A bare Figure
renders with Agg, so no display (and no pyplot state) is involved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .scoring import Application, Results
from .simulator import Device

MAX_DEVICES = 4  # more rows than this are unreadable on one page
LEFT_AXIS = {"vitals": 2}  # resources on the left axis (heart rate and SpO2 share a scale)


def plot_application(app: Application, model: str, devices: list[Device],
                     samples: dict[str, list[tuple[float, ...]]], results: Results,
                     threshold: float | None, path: Path) -> None:
    devices = devices[:MAX_DEVICES]
    rows = 2 if app.score else 1
    fig = Figure(figsize=(11, 2.4 * rows * len(devices)))
    axes = fig.subplots(len(devices) * rows, 1, sharex=True, squeeze=False)
    for i, device in enumerate(devices):
        hours = device.signal.step_seconds / 3600
        values = np.array(samples[device.name]).reshape(-1, len(device.signal.resources))
        top = axes[i * rows, 0]
        _signal(top, app, device, values, results, hours)
        top.set_title(f"{app.title}: {model} on {device.name}", fontsize=10, loc="left")
        if app.score:
            _score(axes[i * rows + 1, 0], app, device, results, threshold, hours)
        for ax in axes[i * rows:(i + 1) * rows, 0]:
            for n, (start, end) in enumerate(device.faults):
                if start < len(values):
                    ax.axvspan(start * hours, min(end, len(values)) * hours, color="orange",
                               alpha=0.25, label=f"true {app.fault}" if n == 0 else None)
            ax.legend(loc="upper left", fontsize=7, ncols=4)
    axes[-1, 0].set_xlabel("simulated time (hours)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _signal(ax: Axes, app: Application, device: Device, values: np.ndarray, results: Results,
            hours: float) -> None:
    resources = device.signal.resources
    units = device.sensor.units
    x = np.arange(len(values)) * hours
    if app.forecast:
        column = resources.index(app.target)
        ax.plot(x, values[:, column], lw=0.8, color="black", label=f"actual {app.target}")
        forecasts = results.series(app.model, device.name, app.forecast)
        steps = np.array(sorted(forecasts))
        if len(steps):
            ax.plot((steps + 1) * hours, [forecasts[s] for s in steps], lw=0.8, color="tab:blue",
                    label=f"forecast ({app.forecast})")
        ax.set_ylabel(units[app.target], fontsize=8)
        return
    left = LEFT_AXIS.get(app.sensor, 1)
    right = ax.twinx()
    for column, name in enumerate(resources):
        (ax if column < left else right).plot(x, values[:, column], lw=0.8, color=f"C{column}",
                                              label=f"{name} ({units[name]})")
    ax.set_ylabel(", ".join(units[name] for name in resources[:left]), fontsize=8)
    right.set_ylabel(", ".join(units[name] for name in resources[left:]), fontsize=8)
    right.legend(loc="upper right", fontsize=7, ncols=3)


def _score(ax: Axes, app: Application, device: Device, results: Results, threshold: float | None,
           hours: float) -> None:
    scores = results.series(app.model, device.name, app.score)
    flags = results.series(app.model, device.name, app.flag)
    steps = np.array(sorted(scores))
    if not len(steps):
        return
    score = np.array([scores[s] for s in steps])
    ax.plot(steps * hours, score, lw=0.8, color="tab:purple", label=app.score)
    if threshold is not None:
        ax.axhline(threshold, color="red", lw=0.8, ls="--", label=f"threshold {threshold:g}")
        if score.max() > 20 * threshold > 0:
            ax.set_yscale("log")
    raised = np.array([flags.get(s, 0.0) > 0 for s in steps])
    ax.fill_between(steps * hours, 0, 1, where=raised, step="mid", color="red", alpha=0.3,
                    transform=ax.get_xaxis_transform(), label=f"{app.flag} raised")
    ax.set_ylabel(app.score, fontsize=8)
