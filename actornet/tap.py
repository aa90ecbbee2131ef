"""``twistd actornet --config FILE``: options and the service tree.

One config may run a dispatcher alone, actors alone (joining a dispatcher
elsewhere), or both; actors in the dispatcher's process connect to it over
loopback exactly as remote actors do, so there is one code path to trust.
"""

import os
import signal
import sys
from importlib.metadata import version

import twisted
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage

from actornet import config as configuration
from actornet import connfile, registration, systemd
from actornet.actors.link import LinkSettings
from actornet.actors.service import ActorService
from actornet.actors.supervisor import Supervisor
from actornet.dispatcher.core import Dispatcher
from actornet.failover import endpoint_for
from actornet.fronts import Fronts
from actornet.listening import (
    ListenFailed,
    client_endpoint_for,
    listener,
    start_listening,
    tls_factory,
)


class Options(usage.Options):
    """Command-line options of ``twistd actornet``."""

    synopsis = "--config FILE"
    longdesc = """Runs the network a TOML config describes: a [dispatcher] table (listen,
http, token, connection_file, keepalive_interval, keepalive_multiplier,
request_timeout, hop_limit, max_frame_bytes, outbound_limit_bytes,
drain_seconds, name, health = "host:port" (/status and /metrics from a
thread of their own, answering while the reactor is blocked), http_token =
true|false (require "Authorization: Bearer TOKEN" on both monitoring
endpoints); [dispatcher.tls]: listen, certificate, key, ca) with
[identities.NAME] tables (token, register, serve, ask, publish) and a
[gateway] table (listen, token, origins, max_message_bytes, max_calls: a
WebSocket gateway for browsers and other languages), or a [join]
table (connect, token) to join a dispatcher elsewhere, and [[actor]] tables
(class = "module:Class", name, services, instances, options, max_restarts,
restart_window).  [join] connect is one endpoint string or a list of them
(connect = ["tcp:host=a:port=5570", "tcp:host=b:port=5570"]): an actor
connects through the first that answers, and when that dispatcher goes it
registers again through another, keeping its state.  [[registration]]
tables (class = "module:Class" providing actornet.registration.IRegistration,
name, options, required, timeout) tell other systems where the dispatcher
listens once every listener listens, and deregister before any closes; under
systemd (NOTIFY_SOCKET set) READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 are
sent with no config (example unit: examples/actornet.service).  Example:
examples/cluster.toml; every key is described in the README's sections "The
config file", "Identities and permissions" and "Registering with systemd and
others".
Use -n (--nodaemon) to stay in the foreground."""

    optParameters = [
        ["config", "c", None, "the network's TOML config file (required)"],
    ]

    def opt_version(self):
        """Print actornet's version and exit."""
        print(f"actornet {version('actornet')} (Twisted {twisted.__version__})")
        sys.exit(0)

    def __init__(self):
        super().__init__()
        print_startup_errors_in_one_line()

    def postOptions(self):
        if not self["config"]:
            raise usage.UsageError("--config FILE is required")
        self["network"] = configuration.load(self["config"])


def print_startup_errors_in_one_line():
    """Make a bad config or an endpoint that cannot be listened on end twistd with
    one ``actornet: ...`` line on stderr (exit status 1), not a traceback or
    twistd's usage text: both are the user's to fix, not a bug.

    twistd lets such errors escape (having removed its pid file first), so the
    place to word them is the interpreter's last word on an uncaught error.
    """
    previous = sys.excepthook

    def one_line(kind, error, traceback):
        if issubclass(kind, (configuration.ConfigError, ListenFailed,
                             connfile.ConnectionFileTaken)):
            print(f"actornet: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    sys.excepthook = one_line


class DispatcherService(MultiService):
    """Listens on every configured endpoint and runs the dispatcher.

    Once listening it logs one splash line (and one for the TLS listeners,
    which require client certificates, and one for the WebSocket gateway),
    writes the connection-info file, and starts the actors configured beside
    it.  Stopping removes the file; the gateway stops listening with the other
    listeners, before the drain, and its WebSockets close once their clients'
    connections do.
    """

    log = Logger()

    def __init__(self, config, reactor, actors=(), hooks=()):
        super().__init__()
        self.config = config
        self.settings = config.settings
        self.reactor = reactor
        self.actors = actors
        self.dispatcher = Dispatcher(reactor, config.settings, endpoints=config.listen,
                                     on_shutdown=self._shutdown)
        self.federation = None
        if config.federation is not None:
            self.federation = federate(self.dispatcher, config.federation, reactor)
        factory = self.dispatcher.factory()
        self.listeners = [listener(reactor, description, factory)
                          for description in config.listen]
        self.tls_listeners = []
        if config.tls is not None:
            secured = tls_factory(config.tls.options(), factory)
            self.tls_listeners = [listener(reactor, description, secured)
                                  for description in config.tls.listen]
            self.listeners.extend(self.tls_listeners)
        self.fronts = Fronts(config, self.dispatcher, reactor)
        if self.fronts.dashboard is not None:
            self.fronts.dashboard.setServiceParent(self)
        self.listeners.extend(self.fronts.listeners)
        self.connect_endpoint = None
        self.registrations = registration.Registrations(
            hooks, reactor, registration.stop_for_required(reactor))
        self.connection_file = None
        if config.connection_file is not None:
            self.connection_file = configuration.connection_file_path(
                config.connection_file or None)

    def privilegedStartService(self):
        """Listen on every endpoint (before twistd drops privileges).

        @raise ListenFailed: when one cannot be listened on; none is left open.
        @raise ConnectionFileTaken: when another running dispatcher wrote the
            connection file.
        """
        Service.privilegedStartService(self)
        if self.connection_file is not None:
            connfile.check_free(self.connection_file)
        start_listening(self.listeners)
        try:
            self.fronts.listen_health()
        except ListenFailed:
            for service in self.listeners:
                service.stopService()
            raise

    def startService(self):
        if self.listeners[0].endpoint.port is None:
            self.privilegedStartService()
        self.dispatcher.start()
        self.connect_endpoint = client_endpoint_for(self.listeners[0].endpoint.port.getHost())
        self.fronts.start(self.connect_endpoint)
        if self.federation is not None:
            self.federation.start()
        if self.connection_file is not None:
            connfile.write(self.connection_file, self.connect_endpoint, self.settings.token,
                           os.getpid())
        self.log.info("actornet: dispatcher {name!r} listening on {where} (pid {pid}); "
                      "connect with {endpoint}{monitoring}", name=self.settings.name,
                      where=", ".join(self.config.listen), pid=os.getpid(),
                      endpoint=self.connect_endpoint, monitoring=self.fronts.splash())
        self.fronts.say_where_the_gateway_is()
        for service in self.tls_listeners:
            self.log.info("actornet: TLS on {where} (at {address}): every peer there must "
                          "present a client certificate signed by {ca}",
                          where=service.description, ca=self.config.tls.ca,
                          address=client_endpoint_for(service.endpoint.port.getHost()))
        supervise(self.actors, (self.connect_endpoint,), self.reactor, self.config.link_settings,
                  self.dispatcher.announce_supervisor_event).setServiceParent(self)
        super().startService()
        self.registrations.register(registration.describe(
            self.dispatcher, self.listeners, self.tls_listeners, self.fronts, self.actors))

    def stopService(self):
        """Drain: stop listening, let requests in flight finish (up to
        ``drain_seconds``), then stop the actors and close every connection."""
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        await self.registrations.deregister()
        for service in self.listeners:
            if service is not self.fronts.http:
                await service.stopService()
        if self.connection_file is not None:
            connfile.remove(self.connection_file, os.getpid())
        failed = await self.dispatcher.drain(self.settings.drain_seconds)
        if failed:
            self.log.warn("{count} requests were still in flight after {seconds}s and "
                          "were failed", count=failed, seconds=self.settings.drain_seconds)
        await super().stopService()
        if self.federation is not None:
            await self.federation.stop()
        await self.dispatcher.stop()
        await self.fronts.stop()

    def _shutdown(self):
        self.log.info("shutdown requested through mmi")
        self.reactor.stop()


class Network(MultiService):
    """The root service: on SIGHUP, every actor in the process hears
    ``on_reload_signal()`` (the inventory re-reads its files)."""

    log = Logger()

    def __init__(self, reactor):
        super().__init__()
        self.reactor = reactor
        self._previous = None

    def startService(self):
        super().startService()
        self._previous = signal.signal(
            signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.hangup))

    def stopService(self):
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None
        return super().stopService()

    def actors(self):
        """Every actor running in this process."""
        pending = list(self)
        while pending:
            service = pending.pop()
            if isinstance(service, ActorService):
                yield service.actor
            elif isinstance(service, MultiService):
                pending.extend(service)

    def hangup(self):
        self.log.info("SIGHUP: telling every actor to reload")
        for actor in self.actors():
            actor.context.run_hook(actor.on_reload_signal)


def federate(dispatcher, config, reactor):
    """The :class:`~actornet.dispatcher.federation.Federation` that joins ``dispatcher``
    to the network ``config`` describes.

    @raise ConfigError: when ``reactor`` is not Twisted's asyncio reactor (the
        NATS client is asyncio).
    """
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise configuration.ConfigError(
            "[federation] needs Twisted's asyncio reactor: start with "
            "twistd --reactor=asyncio actornet --config FILE")
    from actornet.dispatcher.federation import Federation
    from actornet.dispatcher.natsbus import NatsBus

    bus = NatsBus(config, f"actornet dispatcher {dispatcher.name}", dispatcher.stats)
    return Federation(dispatcher, bus, config.network)


def supervise(actors, connect, reactor, link_settings, announce=None):
    """A supervisor running the configured ``actors``, connected to the first of
    the endpoint strings ``connect`` that answers.

    Each actor gets an endpoint of its own: one that fails over remembers
    which dispatcher that actor reached, so its log names that one.
    """

    def start(actor, on_crash):
        return ActorService(actor, endpoint_for(reactor, connect), reactor, link_settings,
                            on_crash=on_crash)

    supervisor = Supervisor(reactor, start, announce)
    for actor in actors:
        supervisor.supervise(actor.name, lambda actor=actor: actor.build(reactor), actor.restart)
    return supervisor


def build(network, reactor):
    """The service tree for a loaded config."""
    root = Network(reactor)
    if network.dispatcher is not None:
        hooks = network.registrations + systemd.from_environment(os.environ, reactor)
        DispatcherService(network.dispatcher, reactor, network.actors,
                          hooks).setServiceParent(root)
    else:
        systemd.warn_when_not_spoken(os.environ)
        supervise(network.actors, network.join.connect, reactor,
                  LinkSettings(token=network.join.token)).setServiceParent(root)
    return root


def makeService(options):
    from twisted.internet import reactor

    return build(options["network"], reactor)
