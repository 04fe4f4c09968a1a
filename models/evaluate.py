"""Evaluate every shipped model on held-out synthetic devices, as the service would run it.

Runs in the runtime venv (.venv: no TensorFlow). Each window goes through the model's manifest
(normalisation, output scale/offset, thresholds) and app_service.tflite, exactly the service's
path. Accuracy figures are seeded and reproducible; latencies depend on the machine.
Writes models/evaluation.json and the figures between the model-figures markers of README.md
and of each model card (models/NAME.md).
"""

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_service.manifest import Manifest, load_manifest
from app_service.tflite import BACKENDS, TFLiteModel
from models.datasets import PUMP, TRAFFIC, VITALS, Application

MODELS_DIR = Path(__file__).resolve().parent
README = MODELS_DIR.parent / "README.md"
START, END = "<!-- model-figures:start -->", "<!-- model-figures:end -->"
LATENCY_RUNS = 500
LATENCY_ROUNDS = 5


def outputs(name: str, raw: np.ndarray, backend: str) -> dict[str, np.ndarray]:
    """Each manifest output's value (before any threshold) for every raw window."""
    manifest = load_manifest(MODELS_DIR / f"{name}.yaml")
    model = TFLiteModel(MODELS_DIR / f"{name}.tflite", runtime=backend)
    x = (raw.astype(np.float32) - manifest.mean) / manifest.std
    tensors = [model.run(window) for window in x]
    return {
        output.name: np.array([t[output.tensor].ravel()[output.index] for t in tensors])
        * output.scale
        + output.offset
        for output in manifest.outputs
    }


def latency_us(name: str, manifest: Manifest) -> dict[str, float]:
    """Microseconds per inference (with (de)quantization) in each runtime, one thread: the
    mean over a round of runs, best of several rounds so a busy machine skews it less."""
    x = np.random.default_rng(0).standard_normal(
        (manifest.inputs.window, len(manifest.inputs.features))
    )
    result = {}
    for backend in BACKENDS:
        model = TFLiteModel(MODELS_DIR / f"{name}.tflite", runtime=backend)
        rounds = []
        for _ in range(LATENCY_ROUNDS):
            started = time.perf_counter()
            for _ in range(LATENCY_RUNS):
                model.run(x)
            rounds.append((time.perf_counter() - started) / LATENCY_RUNS * 1e6)
        result[backend] = round(min(rounds), 1)
    return result


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def detection(alarm: np.ndarray, truth: np.ndarray, device_days: float) -> dict[str, float]:
    """Window-level precision/recall/F1, plus the event view an operator sees: the share of
    faults with at least one alarm, and alarm episodes touching no fault per device-day."""
    tp = int((alarm & truth).sum())
    precision = tp / max(int(alarm.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    faults = runs(truth)
    false_alarms = sum(not truth[start:end].any() for start, end in runs(alarm))
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
        "faultsDetected": round(sum(alarm[s:e].any() for s, e in faults) / len(faults), 4),
        "falseAlarmsPerDay": round(false_alarms / device_days, 3),
    }


def difference(a: np.ndarray, b: np.ndarray, threshold: float | None) -> dict[str, float]:
    """How closely two models' (or runtimes') values, and decisions, follow each other."""
    result = {
        "maxAbsDiff": round(float(np.abs(a - b).max()), 4),
        "meanAbsDiff": round(float(np.abs(a - b).mean()), 4),
    }
    if threshold is not None:
        result["sameDecision"] = round(float(((a > threshold) == (b > threshold)).mean()), 4)
    return result


def evaluate_app(app: Application, key: str, threshold_of: str | None) -> dict[str, dict]:
    """Figures for the float and int8 model of `app`, judged on output `key`: against the
    labels by `threshold_of`'s threshold for detectors, against the next count for forecasts."""
    raw, truth, following = app.windows(app.test_seeds)
    known = ~np.isnan(following[:, 0])
    raw, truth, actual = raw[known], truth[known], following[known, 0]
    report, values = {}, {}
    for name in (app.name, f"{app.name}_int8"):
        manifest = load_manifest(MODELS_DIR / f"{name}.yaml")
        threshold = next((o.threshold for o in manifest.outputs if o.name == threshold_of), None)
        first, other = (outputs(name, raw, backend)[key] for backend in BACKENDS)
        values[name] = first
        if threshold is None:
            metrics = {
                "mae": round(float(np.abs(first - actual).mean()), 3),
                "persistenceMae": round(float(np.abs(raw[:, -1, 0] - actual).mean()), 3),
            }
        else:
            metrics = detection(first > threshold, truth, app.days * len(app.test_seeds))
        report[name] = {"metrics": metrics, "runtimeAgreement": difference(first, other, threshold)}
    report[f"{app.name}_int8"]["agreementWithFloat"] = difference(
        values[app.name], values[f"{app.name}_int8"], threshold
    )
    return report


def evaluate() -> dict[str, dict]:
    five = np.array([[[5.0]]], dtype=np.float32)
    first, other = (outputs("linear_regression", five, b)["Prediction"] for b in BACKENDS)
    report = {
        "linear_regression": {
            "metrics": {"predictionAt5": round(float(first[0]), 4)},
            "runtimeAgreement": difference(first, other, None),
        },
        **evaluate_app(PUMP, "AnomalyScore", "Anomaly"),
        **evaluate_app(TRAFFIC, "ForecastVehicleCount", None),
        **evaluate_app(VITALS, "RiskScore", "Alert"),
    }
    for name, entry in report.items():
        manifest = load_manifest(MODELS_DIR / f"{name}.yaml")
        entry["sizeBytes"] = (MODELS_DIR / f"{name}.tflite").stat().st_size
        entry["latencyUs"] = latency_us(name, manifest)
    return report


def metric_text(metrics: dict[str, float]) -> str:
    if "predictionAt5" in metrics:
        return f"prediction at x=5: {metrics['predictionAt5']:.3f}"
    if "mae" in metrics:
        return f"MAE {metrics['mae']:.2f} vehicles/5 min (persistence {metrics['persistenceMae']:.2f})"
    return (
        f"F1 {metrics['f1']:.3f} (P {metrics['precision']:.3f}, R {metrics['recall']:.3f}); "
        f"faults detected {metrics['faultsDetected']:.0%}, "
        f"false alarms {metrics['falseAlarmsPerDay']:.2f}/day"
    )


def agreement_text(agree: dict | None) -> str:
    if agree is None:
        return ""
    text = f"mean abs diff {agree['meanAbsDiff']:.3g}, max {agree['maxAbsDiff']:.3g}"
    if "sameDecision" in agree:
        text += f", same decision {agree['sameDecision']:.2%}"
    return text


def table(report: dict[str, dict]) -> str:
    """The figures of the models in `report` as a markdown table with its reading notes."""
    lines = [
        "| model | size | held-out accuracy | int8 vs float | ai-edge-litert vs tflite-runtime "
        "| µs/inference ai-edge-litert | µs/inference tflite-runtime |",
        "|---|---:|---|---|---|---:|---:|",
    ]
    for name, entry in report.items():
        latency = entry["latencyUs"]
        lines.append(
            f"| {name} | {entry['sizeBytes'] / 1024:.1f} KiB | {metric_text(entry['metrics'])} "
            f"| {agreement_text(entry.get('agreementWithFloat'))} "
            f"| {agreement_text(entry['runtimeAgreement'])} "
            f"| {latency['ai_edge_litert']} | {latency['tflite_runtime']} |"
        )
    lines.append("")
    lines.append(
        "Accuracy figures are from ai-edge-litert on seeded held-out synthetic devices "
        "(`models/evaluate.py`, details in `models/evaluation.json`) and `make models` reproduces "
        "them exactly. The two runtimes' int8 kernels round a few values differently, hence the "
        "small differences between them. Latencies (one thread, including the service's "
        "(de)quantization, best of 5 rounds) depend on the machine."
    )
    return "\n".join(lines)


def write_figures(path: Path, text: str, markers: tuple[str, str] = (START, END)) -> None:
    """Put `text` between the (model-figures) markers of `path`, adding them if missing."""
    start, end = markers
    block = f"{start}\n{text}\n{end}"
    current = path.read_text() if path.exists() else ""
    if start in current and end in current:
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
        path.write_text(pattern.sub(lambda _: block, current, count=1))
    else:
        path.write_text(current + ("\n" if current else "") + block + "\n")


def int8_losses(report: dict[str, dict]) -> list[str]:
    """Where an int8 model loses more than its budget against the float one: 1 point of F1,
    or 5 % of MAE."""
    losses = []
    for name, entry in report.items():
        if not name.endswith("_int8"):
            continue
        full, int8 = report[name.removesuffix("_int8")]["metrics"], entry["metrics"]
        if "f1" in full and int8["f1"] < full["f1"] - 0.01:
            losses.append(f"{name}: F1 {int8['f1']} against {full['f1']} for float")
        if "mae" in full and int8["mae"] > full["mae"] * 1.05:
            losses.append(f"{name}: MAE {int8['mae']} against {full['mae']} for float")
    return losses


def real_data() -> dict[str, dict]:
    """Figures on real data sets, computed in .venv-train (they need training) by
    evaluate_metro_traffic.py; carried into evaluation.json beside the shipped models'."""
    return {"metroInterstateTraffic": json.loads((MODELS_DIR / "metro_traffic.json").read_text())}


def main() -> None:
    report = evaluate()
    full = {**report, "realData": real_data()}
    (MODELS_DIR / "evaluation.json").write_text(json.dumps(full, indent=2) + "\n")
    write_figures(README, table(report))
    for card in ("linear_regression", PUMP.name, TRAFFIC.name, VITALS.name):
        variants = {name: entry for name, entry in report.items() if name.startswith(card)}
        write_figures(MODELS_DIR / f"{card}.md", table(variants))
    print(table(report))
    if losses := int8_losses(report):
        sys.exit("int8 quantization costs too much accuracy:\n" + "\n".join(losses))


if __name__ == "__main__":
    main()
