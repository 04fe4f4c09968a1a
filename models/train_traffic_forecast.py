"""Train the traffic forecaster: next 5-minute vehicle count from the last hour (12 intervals)
of vehicle count, speed and occupancy at one road sensor.

A small dense network on the normalised window predicts the normalised next count; the
manifest's output scale and offset turn it back into vehicles per 5 minutes. Each feature is
normalised by its training range, not its standard deviation: occupancy under an incident
lies a dozen standard deviations out, and would otherwise squeeze the int8 input resolution
of all three features. Trained on six
weeks of eight synthetic sensors, incidents included. Runs in .venv-train.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.datasets import TRAFFIC
from models.export import export_variants, feature_stats, load_tensorflow, normalise


def main() -> None:
    tf = load_tensorflow(seed=2)
    keras = tf.keras
    raw, incident, following = TRAFFIC.windows(TRAFFIC.train_seeds)
    known = ~np.isnan(following[:, 0])
    features = feature_stats(raw[:, -1], TRAFFIC.signal.resources, by_range=True)
    x = normalise(raw[known], features)
    y = normalise(following[known], features)[:, :1]

    model = keras.Sequential([
        keras.Input((TRAFFIC.window, len(features))),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x, y, epochs=10, batch_size=256, shuffle=True, verbose=0)
    count = features[0]
    mae = np.abs(model.predict(x, batch_size=4096, verbose=0) - y).mean() * count["std"]
    print(f"traffic_forecast: training MAE {mae:.2f} vehicles/5 min")

    # Incidents are rare but push speed and occupancy to their extremes; the int8 ranges
    # must cover them or their inputs would be clipped.
    rng = np.random.default_rng(0)
    incident = incident[known]
    calibration = np.concatenate([
        x[~incident][rng.choice((~incident).sum(), 800, replace=False)],
        x[incident][rng.choice(incident.sum(), 200, replace=False)],
    ])
    export_variants(
        TRAFFIC.name,
        model,
        calibration,
        description="Forecast of the next 5-minute vehicle count from the last hour "
        f"({TRAFFIC.window} intervals) of vehicle count, speed and occupancy.",
        result_profile="traffic-forecast-result",
        window=TRAFFIC.window,
        features=features,
        outputs=[
            {
                "name": "ForecastVehicleCount",
                "index": 0,
                "scale": count["std"],
                "offset": count["mean"],
                "units": "vehicles/5min",
            },
        ],
    )


if __name__ == "__main__":
    main()
