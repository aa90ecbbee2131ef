"""pytest fixtures of the cluster kit (registered as the ``actornet`` pytest plugin).

- ``actornet_cluster``: a started :class:`Cluster` on loopback sockets;
- ``actornet_memory_cluster``: the same, in memory on a Clock;
- ``actornet_any_cluster``: runs the test once in each mode;
- ``actornet_twistd``: ``await actornet_twistd(config_path)`` starts a real
  ``twistd actornet`` process, stopped after the test;
- ``actornet_nats``: ``await actornet_nats(size=3)`` starts a real NATS cluster
  of ``nats-server`` processes, stopped after the test.
- ``actornet_federation``: ``await actornet_federation(["A", "B"], nats=3)``:
  several dispatchers federated over a real NATS cluster, stopped after the test.

They need pytest-twisted (``pip install actornet[test]``); tests that use them
are ``@pytest_twisted.ensureDeferred async def`` tests.
"""

import pytest

from actornet.testing.cluster import MODES, Cluster
from actornet.testing.federated import FederatedNetwork
from actornet.testing.nats import NatsCluster
from actornet.testing.twistd import TwistdNetwork


def _running(mode):
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    cluster = Cluster(mode=mode)
    pytest_twisted.blockon(ensureDeferred(cluster.start()))
    yield cluster
    pytest_twisted.blockon(ensureDeferred(cluster.stop()))


@pytest.fixture
def actornet_cluster():
    """A started cluster on loopback sockets, stopped after the test."""
    yield from _running("sockets")


@pytest.fixture
def actornet_memory_cluster():
    """A started cluster in memory on a self-advancing Clock, stopped after the test."""
    yield from _running("memory")


@pytest.fixture(params=MODES)
def actornet_any_cluster(request):
    """A started cluster, once on sockets and once in memory."""
    yield from _running(request.param)


@pytest.fixture
def actornet_twistd():
    """``await actornet_twistd(config, ready="listening on")``: a running twistd network
    (``ready`` is the output line to wait for; an actors-only config prints no
    splash line, so wait for e.g. ``"twistd"`` or an actor's own line)."""
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    started = []

    async def start(config, *, ready="listening on", timeout=30.0, **options):
        network = TwistdNetwork(config, **options)
        started.append(network)
        return await network.start(ready, timeout)

    yield start
    for network in started:
        if network.running:
            pytest_twisted.blockon(ensureDeferred(network.stop()))


@pytest.fixture
def actornet_nats():
    """``await actornet_nats(size=3, jetstream=True, token=None)``: a started
    :class:`NatsCluster` (other keywords go to it too), stopped after the test even
    when it failed to start."""
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    started = []

    async def start(size=3, *, timeout=30.0, **options):
        cluster = NatsCluster(size, **options)
        started.append(cluster)
        return await cluster.start(timeout)

    yield start
    for cluster in started:
        pytest_twisted.blockon(ensureDeferred(cluster.stop()))


@pytest.fixture
def actornet_federation():
    """``await actornet_federation(["A", "B"], nats=1)``: a started
    :class:`FederatedNetwork` (other keywords go to it too), stopped after the
    test.  Needs pytest-twisted's asyncio reactor (``--reactor=asyncio``)."""
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    started = []

    async def start(names=("A", "B"), *, timeout=30.0, **options):
        network = FederatedNetwork(names, **options)
        started.append(network)
        return await network.start(timeout)

    yield start
    for network in started:
        pytest_twisted.blockon(ensureDeferred(network.stop()))
