"""Train the patient deterioration detector: a risk score from the last 12 minutes of heart
rate, SpO2, respiration rate and body temperature.

A small dense classifier with a sigmoid output, trained on synthetic patients whose
deterioration episodes are labelled (a window is positive when its newest sample is inside
an episode). Activity bouts and SpO2 probe dropouts are in the data as negatives, so the
model learns not to alert on them. Alert when the risk exceeds 0.5. Runs in .venv-train.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.datasets import VITALS
from models.export import export_variants, feature_stats, load_tensorflow, normalise

ALERT_THRESHOLD = 0.5


def main() -> None:
    tf = load_tensorflow(seed=3)
    keras = tf.keras
    raw, labels, _ = VITALS.windows(VITALS.train_seeds)
    features = feature_stats(raw[:, -1], VITALS.signal.resources)
    x = normalise(raw, features)
    y = labels.astype(np.float32)[:, np.newaxis]

    model = keras.Sequential([
        keras.Input((VITALS.window, len(features))),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit(x, y, epochs=8, batch_size=256, shuffle=True, verbose=0)
    alert = model.predict(x, batch_size=4096, verbose=0) > ALERT_THRESHOLD
    print(f"vitals_risk: training accuracy {(alert == (y > 0)).mean():.4f}")

    calibration = x[np.random.default_rng(0).choice(len(x), 1000, replace=False)]
    export_variants(
        VITALS.name,
        model,
        calibration,
        description=f"Deterioration risk in [0, 1] from the last {VITALS.window} minutes of heart "
        "rate, SpO2, respiration rate and body temperature; Alert when the risk exceeds "
        f"{ALERT_THRESHOLD}.",
        result_profile="vitals-risk-result",
        window=VITALS.window,
        features=features,
        outputs=[
            {"name": "RiskScore", "index": 0},
            {"name": "Alert", "index": 0, "threshold": ALERT_THRESHOLD},
        ],
    )


if __name__ == "__main__":
    main()
