"""Shared fixtures: the cluster kit in both of its modes."""

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from actornet.testing import MODES, Cluster


@pytest.fixture(params=MODES)
def cluster(request):
    """A started :class:`Cluster` with no token, on loopback sockets and then in
    memory (the same test runs in both); stopped after the test."""
    running = Cluster(mode=request.param)
    pytest_twisted.blockon(ensureDeferred(running.start()))
    yield running
    pytest_twisted.blockon(ensureDeferred(running.stop()))


@pytest.fixture(params=MODES)
def cluster_mode(request):
    """Each mode of the cluster kit in turn, for tests that build their own cluster."""
    return request.param
