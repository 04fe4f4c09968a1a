"""Train the seed document's linear regression y = m*x + b and export it to TFLite.

Exactly the seed's recipe: one Dense unit fitted to x = [1, 2, 3, 4], y = [2, 4, 6, 8]
with SGD and mean squared error for 500 epochs. Runs in the training venv (.venv-train).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.export import MODELS_DIR, convert_float, load_tensorflow, write_manifest

NAME = "linear_regression"


def main() -> None:
    tf = load_tensorflow(seed=0)
    x = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    y = np.array([[2.0], [4.0], [6.0], [8.0]], dtype=np.float32)
    model = tf.keras.Sequential([tf.keras.Input(shape=(1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.fit(x, y, epochs=500, verbose=0)
    (m,), b = (w.ravel() for w in model.get_weights())
    print(f"{NAME}: y = {m:.4f} * x + {b[0]:.4f}, prediction at 5 = {5 * m + b[0]:.4f}")

    convert_float(model, MODELS_DIR / f"{NAME}.tflite")
    write_manifest(
        NAME,
        {
            "description": "The seed document's linear regression y = m*x + b "
            "(one Dense unit fitted to y = 2x); predicts y for each Float32 reading.",
            "resultProfile": "linear-regression-result",
            "inputs": {"window": 1, "stride": 1, "features": [{"resource": "Float32"}]},
            "outputs": [{"name": "Prediction", "index": 0}],
        },
    )


if __name__ == "__main__":
    main()
