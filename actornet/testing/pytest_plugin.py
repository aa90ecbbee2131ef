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


def _started_then_stopped(make):
    """A fixture's body: ``await start(...)`` builds with ``make(...)`` and starts
    what it made; everything made is stopped after the test, even what failed to
    start (each thing's ``start`` and ``stop`` are coroutines)."""
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    made = []

    async def start(*args, timeout=30.0, **options):
        thing, starting = make(*args, timeout=timeout, **options)
        made.append(thing)
        return await starting

    yield start
    for thing in made:
        if getattr(thing, "running", True):
            pytest_twisted.blockon(ensureDeferred(thing.stop()))


@pytest.fixture
def actornet_twistd():
    """``await actornet_twistd(config, ready="listening on")``: a running twistd network
    (``ready`` is the output line to wait for; an actors-only config prints no
    splash line, so wait for e.g. ``"twistd"`` or an actor's own line)."""

    def make(config, *, ready="listening on", timeout, **options):
        network = TwistdNetwork(config, **options)
        return network, network.start(ready, timeout)

    yield from _started_then_stopped(make)


@pytest.fixture
def actornet_nats():
    """``await actornet_nats(size=3, jetstream=True, token=None)``: a started
    :class:`NatsCluster` (other keywords go to it too), stopped after the test even
    when it failed to start."""

    def make(size=3, *, timeout, **options):
        cluster = NatsCluster(size, **options)
        return cluster, cluster.start(timeout)

    yield from _started_then_stopped(make)


@pytest.fixture
def actornet_federation():
    """``await actornet_federation(["A", "B"], nats=1)``: a started
    :class:`FederatedNetwork` (other keywords go to it too), stopped after the
    test.  Needs pytest-twisted's asyncio reactor (``--reactor=asyncio``)."""

    def make(names=("A", "B"), *, timeout, **options):
        network = FederatedNetwork(names, **options)
        return network, network.start(timeout)

    yield from _started_then_stopped(make)
