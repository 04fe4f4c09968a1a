"""Train every shipped model, each in its own process so none depends on another's state, and
the traffic forecaster's architecture on real counts (evaluate_metro_traffic.py).

Run with the training venv's Python (`make models` does, then evaluates in the runtime venv).
"""

import subprocess
import sys
from pathlib import Path

SCRIPTS = (
    "train_linear_regression.py",
    "train_pump_anomaly.py",
    "train_traffic_forecast.py",
    "train_vitals_risk.py",
    "evaluate_metro_traffic.py",
)


def main() -> None:
    models_dir = Path(__file__).resolve().parent
    for script in SCRIPTS:
        subprocess.run([sys.executable, str(models_dir / script)], check=True)


if __name__ == "__main__":
    main()
