"""pytest fixture for the EdgeX stand-in (tests/edgex_standin.py).

tests/conftest.py loads it with `pytest_plugins = ["tests.edgex_fixtures"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .edgex_standin import EdgeXStandIn


@pytest.fixture
def edgex() -> Iterator[EdgeXStandIn]:
    """A running EdgeX stand-in (core-keeper, core-metadata, core-data, core-command, Consul).

    The test fails at teardown if any request to it is one EdgeX would refuse. A test that sends
    such requests on purpose checks them with `edgex.take_violations()`, which also clears them.
    """
    with EdgeXStandIn() as standin:
        yield standin
    if standin.violations:
        pytest.fail("requests EdgeX would refuse:\n  " + "\n  ".join(standin.violations), pytrace=False)
