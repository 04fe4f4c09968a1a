"""Shared fixtures: a real MQTT broker on a free port, MQTT peers, and the service as a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app_service.broker import Broker, start_broker

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
