"""A cluster in the test's own process: a real dispatcher and real actors.

    cluster = await Cluster().start()          # or Cluster(mode="memory")
    await cluster.add(MyActor("worker"))
    client = await cluster.client()
    answer = await client.ask("my-service", "method", {"x": 1})
    await cluster.stop()

``mode="sockets"`` (the default): the dispatcher listens on a loopback port the
system picks, and actors and clients connect over TCP, exactly as in
production.  ``mode="memory"``: the same objects talk over in-memory
connections on a ``Clock`` that runs ahead by itself (see
:mod:`actornet.testing.memory`): deterministic, and a 30 s timeout costs no
real time.  The same test code runs in both modes.

Faults: :meth:`Cluster.kill`, :meth:`Cluster.cut`, :meth:`Cluster.freeze`,
:meth:`Cluster.restart_dispatcher`, :meth:`Cluster.delay`, :meth:`Cluster.drop`.
Waiting: :meth:`Cluster.wait_for` and the helpers built on it re-check their
condition whenever the dispatcher or an actor of the cluster handles a frame;
they never sleep.
"""

import attrs
from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from actornet.actors.link import LinkSettings
from actornet.actors.runner import ThreadRunner
from actornet.actors.service import ActorService
from actornet.actors.supervisor import Supervisor
from actornet.client import connect
from actornet.dispatcher.core import Dispatcher
from actornet.dispatcher.settings import DispatcherSettings
from actornet.dispatcher.web import monitoring_site
from actornet.listening import client_endpoint_for
from actornet.tap import federate
from actornet.testing.faults import MESSAGES, LinkFault
from actornet.testing.links import KitEndpoint, WatchedFactory
from actornet.testing.memory import AutoJump, MemoryEndpoint

MODES = ("sockets", "memory")


class ConditionTimeout(AssertionError):
    """A waited-for condition did not become true in time."""


class Cluster:
    """A dispatcher and the actors added to it, in this process.

    @param mode: ``"sockets"`` (loopback TCP) or ``"memory"`` (in-memory, on a Clock).
    @param retry_delay: seconds an actor waits before reconnecting.
    @param on_shutdown: called when ``mmi.shutdown`` is permitted (default: refused).
    @param settings: fields of :class:`~actornet.dispatcher.settings.DispatcherSettings`
        (``token``, ``keepalive_interval``, ``hop_limit``, ...).
    """

    def __init__(self, reactor=None, *, mode="sockets", retry_delay=0.05, on_shutdown=None,
                 federation=None, **settings):
        if mode not in MODES:
            raise ValueError(f"mode is one of {MODES}, not {mode!r}")
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.mode = mode
        self.clock = Clock() if mode == "memory" else reactor
        self.settings = DispatcherSettings(**settings)
        self.token = self.settings.token
        self.link_settings = LinkSettings(self.token, self.settings.keepalive_multiplier,
                                          self.settings.max_frame_bytes)
        self.on_shutdown = on_shutdown
        self.retry_delay = retry_delay
        self.federation_config = federation
        self.federation = None
        self.dispatcher = None
        self.port = None
        self.endpoint = None
        self.services = {}
        self.clients = []
        self.links = {}
        self.supervisor = None
        self._listening = None
        self._port_number = 0
        self._clients_made = 0
        self._watchers = []
        self._extra_ports = []
        self.runner = ThreadRunner(reactor)
        self._driver = AutoJump(self.clock, reactor, self.runner,
                                self._journal_busy) if mode == "memory" else None

    def _journal_busy(self):
        """Whether the dispatcher's journal is at work in its database thread."""
        journal = self.dispatcher.journal if self.dispatcher is not None else None
        return journal is not None and journal.busy > 0

    async def start(self):
        """Start the dispatcher; returns the cluster."""
        if self._driver is not None:
            self._driver.start()
        await self._open()
        return self

    async def _open(self):
        self.dispatcher = Dispatcher(self.clock, self.settings, on_shutdown=self.on_shutdown)
        self._listening = WatchedFactory(self.dispatcher.factory(), self._notify)
        if self.mode == "sockets":
            server = endpoints.serverFromString(
                self.reactor, f"tcp:{self._port_number}:interface=127.0.0.1")
            self.port = await server.listen(self._listening)
            self._port_number = self.port.getHost().port
            self.endpoint = client_endpoint_for(self.port.getHost())
        else:
            self.endpoint = "memory"
        self.dispatcher.start()
        if self.federation_config is not None:
            self.federation = federate(self.dispatcher, self.federation_config, self.reactor)
            self.federation.start()
            await self.federation.when_up()

    async def leave_federation(self, *, say_bye=True):
        """Disconnect this dispatcher from NATS; ``say_bye=False`` leaves as a
        crashed process would: the others notice only after a holdtime."""
        federation, self.federation = self.federation, None
        if federation is not None:
            await federation.stop(say_bye=say_bye)

    def connector(self, name):
        """A client endpoint that reaches the dispatcher (across restarts), its
        connections watched and open to faults as the links of ``name``."""
        if self.mode == "sockets":
            endpoint = endpoints.clientFromString(self.reactor, self.endpoint)
        else:
            endpoint = MemoryEndpoint(self.clock, lambda: self._listening)
        return KitEndpoint(endpoint, self._notify, self.clock,
                           lambda link: self.links.__setitem__(name, link))

    # -- actors and clients --------------------------------------------------

    async def add(self, actor, *, wait=True, token=None):
        """Run ``actor`` connected to the dispatcher (reconnecting like in production).

        The actor runs on the cluster's clock and thread runner (this sets
        ``actor.clock`` and ``actor.runner``).
        @param wait: wait until the actor is registered and prepared.
        """
        service = self._service(actor, token=token)
        service.startService()
        if wait:
            await service.whenReady()
            await self.registered(actor.name)
        return actor

    async def supervise(self, name, build, *, policy=None, wait=True):
        """Run the actor ``build()`` makes (called ``name``) under a one-for-one
        supervisor: when it crashes, a fresh ``build()`` replaces it.

        @return: the supervisor's :class:`~actornet.actors.supervisor.Child`;
            ``child.service.actor`` is the instance running now.
        """
        if self.supervisor is None:
            self.supervisor = Supervisor(
                self.clock, self._start_supervised,
                lambda data: self.dispatcher.announce_supervisor_event(data))
            self.supervisor.startService()
        child = self.supervisor.supervise(name, build, policy)
        if wait:
            await child.service.whenReady()
            await self.registered(name)
        return child

    def _start_supervised(self, actor, on_crash):
        return self._service(actor, on_crash=on_crash)

    def _service(self, actor, token=None, on_crash=None):
        """An (unstarted) service connecting ``actor`` to this cluster, on its clock."""
        actor.clock = self.clock
        actor.runner = self.runner
        settings = attrs.evolve(self.link_settings, token=token or self.token)
        service = ActorService(actor, self.connector(actor.name), self.clock, settings,
                               retry_policy=lambda attempt: self.retry_delay, on_crash=on_crash)
        self.services[actor.name] = service
        return service

    async def client(self, name=None, token=None):
        """A connected :class:`~actornet.client.Client`, closed by :meth:`stop`."""
        if name is None:
            self._clients_made += 1
            name = f"client-{self._clients_made}"
        client = await connect(self.connector(name), token if token is not None else self.token,
                               name=name, reactor=self.clock, runner=self.runner)
        self.clients.append(client)
        return client

    def _notify(self):
        for watcher in list(self._watchers):
            watcher()

    # -- waiting -----------------------------------------------------------

    def wait_for(self, condition, timeout=5.0, what="the condition"):
        """A Deferred that fires when ``condition()`` is true.

        It is checked now, and again whenever the dispatcher or an actor of
        the cluster has read from its connection or lost one.  ``timeout`` is
        in the cluster's time (virtual in memory mode).
        @raise ConditionTimeout: after ``timeout`` seconds.
        """
        done = Deferred()
        if condition():
            done.callback(None)
            return done

        def check():
            if not done.called and condition():
                finish()
                done.callback(None)

        def expire():
            finish()
            done.errback(ConditionTimeout(f"{what} did not happen within {timeout}s"))

        def finish():
            if check in self._watchers:
                self._watchers.remove(check)
            if timer.active():
                timer.cancel()

        timer = self.clock.callLater(timeout, expire)
        self._watchers.append(check)
        return done

    def snapshot(self):
        """The dispatcher's read-only :class:`~actornet.dispatcher.snapshot.Snapshot`."""
        return self.dispatcher.snapshot()

    def registered(self, name, timeout=5.0):
        """Wait until an actor called ``name`` is registered."""
        return self.wait_for(lambda: name in self.snapshot().names, timeout,
                             f"registration of {name!r}")

    def gone(self, name, timeout=5.0):
        """Wait until no actor called ``name`` is registered."""
        return self.wait_for(lambda: name not in self.snapshot().names, timeout,
                             f"departure of {name!r}")

    def workers(self, service, count, timeout=5.0):
        """Wait until ``service`` has ``count`` registered actors."""
        return self.wait_for(lambda: len(self.snapshot().serving(service)) == count,
                             timeout, f"{count} workers of {service!r}")

    async def listen(self, topic):
        """A list that fills with the bags published on ``topic`` from now on
        (wait for an event with ``cluster.wait_for(lambda: seen)``)."""
        client = await self.client()
        seen = []
        client.subscribe(topic, seen.append)
        await self.wait_for(
            lambda: client.name in self.snapshot().subscriptions.get(topic, ()),
            what=f"the subscription to {topic!r}")
        return seen

    def advance(self, seconds):
        """Let ``seconds`` of the cluster's time pass (virtual in memory mode)."""
        return deferLater(self.clock, seconds, lambda: None)

    # -- faults ------------------------------------------------------------

    def peer(self, name):
        """The dispatcher's view of the actor called ``name`` (a read-only
        :class:`~actornet.dispatcher.snapshot.PeerView`)."""
        for peer in self.snapshot().peers:
            if peer.name == name:
                return peer
        raise KeyError(f"no actor called {name!r} is registered")

    async def kill(self, name):
        """Kill the actor: stop its service and abort its connection at once."""
        service = self.services.pop(name)
        registered = name in self.snapshot().names
        link = self.links.get(name)
        if link is not None and not link.lost:
            link.transport.abortConnection()
        await service.stopService()
        if registered:
            await self.gone(name)

    async def cut(self, name):
        """Abort the actor's connection; it reconnects by itself after its backoff."""
        self.links[name].transport.abortConnection()
        await self.gone(name)

    def freeze(self, name):
        """Make the actor stop reading from its connection (a hung process, as the
        dispatcher sees it): bytes for it pile up and its keepalives stop."""
        self.links[name].freeze()

    def thaw(self, name):
        """Let a frozen actor read again."""
        link = self.links.get(name)
        if link is not None:
            link.thaw()

    def delay(self, name, seconds, direction="both"):
        """Delay every frame on the actor's link by ``seconds``; returns the fault."""
        return self._fault(name, LinkFault(delay=seconds, direction=direction))

    def drop(self, name, count=None, kinds=MESSAGES, direction="both"):
        """Drop ``count`` message frames (None: all) on the actor's link; returns the fault."""
        return self._fault(name, LinkFault(drop=count, kinds=kinds, direction=direction))

    def heal(self, name):
        """Remove the delay or drop on the actor's link."""
        self.links[name].fault = None

    def _fault(self, name, fault):
        self.links[name].fault = fault
        return fault

    async def restart_dispatcher(self):
        """Stop the dispatcher (dropping every connection) and start a new one
        in its place; actors reconnect by themselves."""
        if self.port is not None:
            await self.port.stopListening()
        if self.mode == "memory":
            for connection in self._listening.connections():
                connection.transport.abortConnection()
        await self.leave_federation()
        await self.dispatcher.stop()
        await self._open()

    async def monitoring(self):
        """Serve the dispatcher's /metrics and /status on a loopback port; returns
        the base URL (``http://127.0.0.1:PORT``)."""
        server = endpoints.serverFromString(self.reactor, "tcp:0:interface=127.0.0.1")
        port = await server.listen(monitoring_site(self.dispatcher))
        self._extra_ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}"

    async def stop(self):
        """Close clients, stop actors and the dispatcher."""
        for link in self.links.values():
            link.fault = None
            link.thaw()
        for client in self.clients:
            await client.close()
        if self.supervisor is not None:
            await self.supervisor.stopService()
            for child in self.supervisor.children.values():
                self.services.pop(child.name, None)
        for service in list(self.services.values()):
            await service.stopService()
        self.services.clear()
        for port in self._extra_ports:
            await port.stopListening()
        if self.port is not None:
            await self.port.stopListening()
        await self.leave_federation()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self._driver is not None:
            self._driver.stop()
