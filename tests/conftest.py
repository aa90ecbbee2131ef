"""Shared fixtures: an in-process cluster on loopback, stopped after each test."""

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from actornet.testing import Cluster


@pytest.fixture
def cluster():
    """A started :class:`Cluster` with no token; stopped after the test."""
    running = Cluster()
    pytest_twisted.blockon(ensureDeferred(running.start()))
    yield running
    pytest_twisted.blockon(ensureDeferred(running.stop()))
