"""The cluster kit for ``twisted.trial`` tests.

    class MyActorTests(ClusterTestMixin, TestCase):
        async def test_greets(self):
            cluster = await self.start_cluster()
            await cluster.add(Greeter("greeter"))
            client = await cluster.client()
            self.assertEqual((await client.ask("greet", "hello", {"name": "x"}))["text"], ...)
"""

from twisted.internet.defer import Deferred

from actornet.testing.cluster import Cluster
from actornet.testing.federated import FederatedNetwork
from actornet.testing.nats import NatsCluster
from actornet.testing.twistd import TwistdNetwork


class ClusterTestMixin:
    """Mix into a trial ``TestCase``: clusters, twistd networks and NATS clusters
    are stopped by the test's cleanups, whatever the test's outcome."""

    async def start_cluster(self, mode="sockets", **options):
        """A started :class:`Cluster` (``mode`` is ``"sockets"`` or ``"memory"``)."""
        cluster = await Cluster(mode=mode, **options).start()
        self.addCleanup(lambda: Deferred.fromCoroutine(cluster.stop()))
        return cluster

    async def start_twistd(self, config, *, ready="listening on", timeout=30.0, **options):
        """A running :class:`TwistdNetwork` for ``config``, once it printed ``ready``."""
        network = await TwistdNetwork(config, **options).start(ready, timeout)
        self.addCleanup(lambda: Deferred.fromCoroutine(network.stop())
                        if network.running else None)
        return network

    async def start_federation(self, names=("A", "B"), *, timeout=30.0, **options):
        """A started :class:`FederatedNetwork`: dispatchers ``names`` over a real NATS
        cluster (``trial --reactor=asyncio``: the federation's client is asyncio)."""
        network = FederatedNetwork(names, **options)
        self.addCleanup(lambda: Deferred.fromCoroutine(network.stop()))
        return await network.start(timeout)

    async def start_nats(self, size=3, *, timeout=30.0, **options):
        """A started :class:`NatsCluster` of ``size`` ``nats-server`` processes.

        The kit runs on any reactor; a test that talks to it with nats-py (asyncio)
        needs ``trial --reactor=asyncio``."""
        cluster = NatsCluster(size, **options)
        self.addCleanup(lambda: Deferred.fromCoroutine(cluster.stop()))
        return await cluster.start(timeout)
