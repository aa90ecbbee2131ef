"""Several dispatchers in the test's own process, federated over a real NATS cluster.

    network = await FederatedNetwork(["A", "B"], nats=3).start()
    await network["B"].add(Worker("worker"))
    await network.reaches("worker")              # every dispatcher knows it
    client = await network["A"].client()
    answer = await client.ask("work", "do", {})  # A -> NATS -> B -> worker
    await network.stop()

Each dispatcher is a sockets-mode :class:`~actornet.testing.cluster.Cluster`
(its actors and clients connect over loopback TCP) whose federation reaches
the NATS nodes through proxies of the kit, its own node first.  The kit's
NATS nodes do not advertise each other to clients, so a dispatcher uses
exactly the URLs it was given, and :meth:`cut` can sever it from NATS.
Faults: :meth:`crash`, :meth:`restart`, :meth:`cut`, :meth:`heal`, and the
NATS cluster's own ``kill``/``restart`` of a node.

Waiting: what crosses NATS does not pass through the kit's watched
connections, so :meth:`wait_for` re-checks its condition every 20 ms until it
holds or its timeout passes (it waits for other processes; it measures
nothing).  It needs Twisted's asyncio reactor (the suite runs on it).
"""

from urllib.parse import urlsplit

from twisted.internet import endpoints
from twisted.internet.task import deferLater
from twisted.protocols import portforward

from actornet.federation_config import FederationConfig
from actornet.testing.cluster import Cluster, ConditionTimeout
from actornet.testing.nats import NatsCluster


class _Proxied(portforward.ProxyServer):
    def connectionMade(self):
        self.factory.open.add(self)
        super().connectionMade()

    def connectionLost(self, reason):
        self.factory.open.discard(self)
        super().connectionLost(reason)


class CuttableProxy(portforward.ProxyFactory):
    """A TCP proxy to a NATS node that the kit can cut (closing what is open and
    refusing new connections) and heal."""

    protocol = _Proxied
    noisy = False

    def __init__(self, host, port):
        super().__init__(host, port)
        self.open = set()
        self.cut = False

    def buildProtocol(self, addr):
        if self.cut:
            return None
        return super().buildProtocol(addr)

    def sever(self):
        self.cut = True
        for connection in list(self.open):
            connection.transport.abortConnection()


class FederatedNetwork:
    """Dispatchers called ``names`` federated over a ``nats``-node NATS cluster.

    @param token: the NATS cluster requires it, and the dispatchers present it.
    @param settings: :class:`~actornet.dispatcher.settings.DispatcherSettings`
        fields for every dispatcher; the keepalive interval defaults to 0.2 s
        so that a dead dispatcher is noticed within 0.6 s.
    """

    def __init__(self, names=("A", "B"), *, nats=1, network="kit", token=None, reactor=None,
                 **settings):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.names = tuple(names)
        self.nats_size = nats
        self.network = network
        self.token = token
        settings.setdefault("keepalive_interval", 0.2)
        self.settings = settings
        self.nats = None
        self.clusters = {}
        self.proxies = {}
        self._ports = []

    def __getitem__(self, name):
        return self.clusters[name]

    async def start(self, timeout=30.0):
        """Start NATS and every dispatcher; returns once each knows all the others."""
        self.nats = await NatsCluster(self.nats_size, reactor=self.reactor, token=self.token,
                                      advertise=False).start()
        for index, name in enumerate(self.names):
            await self._open(index, name)
        await self.wait_for(self._meshed, timeout, "every dispatcher to know the others")
        return self

    async def _open(self, index, name):
        if name not in self.proxies:
            first = index % self.nats_size
            nodes = [1 + (first + i) % self.nats_size for i in range(self.nats_size)]
            self.proxies[name] = [await self._proxy(self.nats.url(node)) for node in nodes]
        config = FederationConfig(tuple(proxy.url for proxy in self.proxies[name]),
                                  self.network, token=self.token,
                                  replicas=min(3, self.nats_size))
        cluster = Cluster(self.reactor, name=name, federation=config, **self.settings)
        self.clusters[name] = await cluster.start()

    async def _proxy(self, url):
        target = urlsplit(url)
        proxy = CuttableProxy(target.hostname, target.port)
        server = endpoints.serverFromString(self.reactor, "tcp:0:interface=127.0.0.1")
        port = await server.listen(proxy)
        self._ports.append(port)
        proxy.url = f"nats://127.0.0.1:{port.getHost().port}"
        return proxy

    def _meshed(self):
        running = [c for c in self.clusters.values() if c.federation is not None]
        names = {c.dispatcher.name for c in running}
        return all(set(c.federation.remotes) == names - {c.dispatcher.name} for c in running)

    async def wait_for(self, condition, timeout=10.0, what="the condition"):
        """Re-check ``condition()`` every 20 ms until it is true.

        @raise ConditionTimeout: naming ``what`` after ``timeout`` seconds.
        """
        deadline = self.reactor.seconds() + timeout
        while not condition():
            if self.reactor.seconds() > deadline:
                raise ConditionTimeout(f"timed out after {timeout:g}s waiting for {what}")
            await deferLater(self.reactor, 0.02, lambda: None)

    async def reaches(self, actor, timeout=10.0):
        """Wait until every running dispatcher can route to the actor ``actor``."""
        await self.wait_for(
            lambda: all(actor in c.dispatcher.registry.by_name
                        for c in self.clusters.values() if c.federation is not None),
            timeout, f"every dispatcher to know actor {actor!r}")

    async def forgotten(self, actor, timeout=10.0):
        """Wait until no dispatcher knows the actor ``actor``."""
        await self.wait_for(
            lambda: all(actor not in c.dispatcher.registry.by_name
                        for c in self.clusters.values()),
            timeout, f"every dispatcher to forget actor {actor!r}")

    def in_flight(self):
        """``{dispatcher: requests in flight}``: all zero once everything is answered."""
        return {name: len(c.dispatcher.inflight) for name, c in self.clusters.items()
                if c.dispatcher is not None}

    # -- faults ----------------------------------------------------------------

    async def crash(self, name):
        """Dispatcher ``name`` dies as a killed process would: no goodbye on NATS,
        every connection of its star dropped.  Its actors keep trying to reconnect."""
        cluster = self.clusters[name]
        await cluster.leave_federation(say_bye=False)
        if cluster.port is not None:
            await cluster.port.stopListening()
            cluster.port = None
        for peer in list(cluster.dispatcher.peers):
            peer.protocol.transport.abortConnection()
        await cluster.dispatcher.stop()

    async def restart(self, name):
        """Start dispatcher ``name`` again (a new incarnation) on its old port;
        after :meth:`crash`, or in place of the running one."""
        cluster = self.clusters[name]
        if cluster.port is not None:
            await cluster.restart_dispatcher()
        else:
            await cluster._open()
        await self.wait_for(self._meshed, 10.0, f"dispatcher {name} to rejoin")

    def cut(self, name):
        """Sever dispatcher ``name`` from NATS: its connection is closed and every
        node refuses it until :meth:`heal`."""
        for proxy in self.proxies[name]:
            proxy.sever()

    def heal(self, name):
        """Let dispatcher ``name`` reach NATS again; it rejoins by itself."""
        for proxy in self.proxies[name]:
            proxy.cut = False

    async def stop(self):
        """Stop every dispatcher (and its actors and clients), the proxies and NATS."""
        for cluster in self.clusters.values():
            await cluster.stop()
        for port in self._ports:
            await port.stopListening()
        if self.nats is not None:
            await self.nats.stop()
