"""Shared fixtures: a real MQTT broker on a free port, MQTT peers, and the service as a process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app_service.broker import Broker, start_broker
from app_service.tflite import BACKENDS, available_backends

from .mqtt_helpers import Peer, ServiceProcess, start_service

pytest_plugins = ["tests.edgex_fixtures"]


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with start_broker() as running:
        yield running


@pytest.fixture
def peer(broker: Broker) -> Iterator[Callable[..., Peer]]:
    """Factory: peer(*subscriptions) -> a connected Peer; all are closed after the test."""
    peers: list[Peer] = []

    def make(*subscriptions: str) -> Peer:
        peers.append(Peer(broker.port, *subscriptions))
        return peers[-1]

    yield make
    for p in peers:
        p.close()


@pytest.fixture
def service(broker: Broker, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Factory: service(*args, env=..., wait=...) -> the running service; stopped after the test."""
    running: list[ServiceProcess] = []

    def make(*args: str, **kwargs) -> ServiceProcess:
        running.append(start_service(broker.port, tmp_path, *args, **kwargs))
        return running[-1]

    yield make
    for process in running:
        process.stop()


def require_runtime(name: str) -> None:
    """Both runtimes must be there (`make venv` installs them), except tflite-runtime where it
    cannot be: it has no wheels for Python 3.12 and later."""
    if name in available_backends():
        return
    if name == "tflite_runtime" and sys.version_info >= (3, 12):
        pytest.skip("tflite-runtime has no wheels for Python 3.12+")
    pytest.fail(f"{name} is not installed: `make venv` installs both runtimes")


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest) -> str:
    """Each TFLite runtime in turn."""
    require_runtime(request.param)
    return request.param


@pytest.fixture
def both_runtimes() -> tuple[str, ...]:
    for name in BACKENDS:
        require_runtime(name)
    return BACKENDS
