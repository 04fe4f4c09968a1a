"""Train the pump anomaly detector: a dense autoencoder over 32-minute windows of vibration and
temperature, exported so that the TFLite graph outputs the anomaly score itself.

The autoencoder only ever sees healthy pumps, so it reconstructs healthy windows well and
faulty ones badly. The score is the mean over the normalised window of tanh(|x - x'| / 0.5),
x' the reconstruction: 0 for a perfect reconstruction, towards 1 when every sample is far off.
Squashing each error (rather than squaring it) bounds every tensor of the score computation,
which is what lets the int8 model keep the resolution the threshold needs. The threshold is
the 99.99th percentile of scores on healthy windows from training pumps held out of fitting:
about one healthy window in 10,000 (one a week per pump) scores above it. Runs in .venv-train.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.datasets import PUMP
from models.export import export_variants, feature_stats, load_tensorflow, normalise

THRESHOLD_PERCENTILE = 99.99
CALIBRATION_PUMPS = 2  # training pumps kept out of fitting, for the threshold
INPUT_CAP = 4.0  # normalised units: int8 inputs saturate here, far above any healthy value
ERROR_SCALE = 0.5  # normalised units: reconstruction errors well beyond this count fully


def main() -> None:
    tf = load_tensorflow(seed=1)
    keras = tf.keras
    fit_seeds = PUMP.train_seeds[:-CALIBRATION_PUMPS]
    threshold_seeds = PUMP.train_seeds[-CALIBRATION_PUMPS:]
    raw, _, _ = PUMP.windows(fit_seeds, with_faults=False)
    features = feature_stats(raw[:, -1], PUMP.signal.resources)
    x = normalise(raw[::2], features)

    shape = (PUMP.window, len(features))
    autoencoder = keras.Sequential([
        keras.Input(shape),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="tanh"),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(32, activation="tanh"),
        keras.layers.Dense(shape[0] * shape[1]),
        keras.layers.Reshape(shape),
    ])
    autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    autoencoder.fit(x, x, epochs=12, batch_size=256, shuffle=True, verbose=0)

    window = keras.Input(shape)
    # Errors beyond 3 * ERROR_SCALE squash to ~1 anyway; clipping them first keeps the int8
    # range of the error tensor, and so its resolution, to what matters.
    error = keras.ops.clip((window - autoencoder(window)) / (3 * ERROR_SCALE), -1.0, 1.0)
    error = keras.ops.tanh(3 * keras.ops.abs(error))
    scorer = keras.Model(window, keras.ops.mean(error, axis=(1, 2)))

    held_out, faulty = PUMP.windows(threshold_seeds)[:2]
    held_out = normalise(held_out, features)
    healthy = held_out[~faulty]
    scores = scorer.predict(healthy, batch_size=4096, verbose=0)
    threshold = float(f"{np.percentile(scores, THRESHOLD_PERCENTILE):.4g}")
    print(f"pump_anomaly: healthy score median {np.median(scores):.4f}, threshold {threshold}")

    # The int8 ranges must cover faulty windows too, or quantization would clip them to normal.
    rng = np.random.default_rng(0)
    calibration = np.concatenate([
        healthy[rng.choice(len(healthy), 700, replace=False)],
        np.minimum(held_out[faulty][rng.choice(faulty.sum(), 300, replace=False)], INPUT_CAP),
    ])
    export_variants(
        PUMP.name,
        scorer,
        calibration,
        description="Autoencoder anomaly score in [0, 1) (mean squashed reconstruction error of "
        f"the normalised window) over {PUMP.window}-sample windows of vibration and temperature; "
        f"Anomaly when the score exceeds the {THRESHOLD_PERCENTILE}th percentile of healthy "
        "training windows.",
        result_profile="pump-anomaly-result",
        window=PUMP.window,
        features=features,
        outputs=[
            {"name": "AnomalyScore", "index": 0},
            {"name": "Anomaly", "index": 0, "threshold": threshold},
        ],
    )


if __name__ == "__main__":
    main()
