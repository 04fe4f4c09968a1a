"""For tests of the service in an EdgeX deployment: config files, common config, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .edgex_standin import EdgeXStandIn
from .mqtt_helpers import REPO, ServiceProcess


def config_dir(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> list[str]:
    """res/configuration.yaml changed by `change`, written below tmp_path: the -cd arguments."""
    data = yaml.safe_load((REPO / "res" / "configuration.yaml").read_text())
    change(data)
    folder = tmp_path / "res"
    folder.mkdir(exist_ok=True)
    (folder / "configuration.yaml").write_text(yaml.safe_dump(data))
    return ["-cd", str(folder)]


def seed_common_config(edgex: EdgeXStandIn, broker_port: int, *, stem: str = "edgex/v4",
                       registry: str = "keeper") -> None:
    """What core-common-config-bootstrapper stores, pointing at the test broker and stand-in."""
    registry_port = edgex.port("core-keeper" if registry == "keeper" else "consul")
    edgex.seed_kv(f"{stem}/core-common-config-bootstrapper", {
        "IsCommonConfigReady": True,
        "all-services": {
            "Writable": {"LogLevel": "INFO", "Telemetry": {"Interval": "30s"}},
            "Registry": {"Host": "127.0.0.1", "Port": registry_port, "Type": registry},
            "MessageBus": {
                "Disabled": False, "Type": "mqtt", "Protocol": "tcp", "Host": "127.0.0.1",
                "Port": broker_port, "AuthMode": "none", "SecretName": "", "BaseTopicPrefix": "edgex",
                "Optional": {"Format": "json", "Qos": 0, "KeepAlive": 10, "AutoReconnect": True},
            },
            "Service": {"HealthCheckInterval": "10s", "Host": "localhost", "RequestTimeout": "5s"},
        },
        "app-services": {
            "Clients": {"core-metadata": {"Protocol": "http", "Host": "127.0.0.1",
                                          "Port": edgex.port("core-metadata")}},
            "Trigger": {"Type": "edgex-messagebus"},
        },
    })


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    """A sample of the service's GET /metrics (0 when it has none yet)."""
    text = requests.get(f"http://127.0.0.1:{service.rest_port}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def wait_for_metric(service: ServiceProcess, name: str, expected: float, timeout: float = 30,
                    **labels: str) -> None:
    """Wait until the metric reaches `expected`; fail if it is then more."""
    deadline = time.monotonic() + timeout
    while (value := metric(service, name, **labels)) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {value}, expected {expected}:\n{service.log}")
        time.sleep(0.05)
    assert value == expected, f"{name}{labels} is {value}, expected {expected}"
