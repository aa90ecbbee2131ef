"""``twistd actornet --config FILE``: options and the service tree.

One config may run a dispatcher alone, actors alone (joining a dispatcher
elsewhere), or both; actors in the dispatcher's process connect to it over
loopback exactly as remote actors do, so there is one code path to trust.
"""

import os
import re
import signal
import socket
import stat

from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from actornet import config as configuration
from actornet import connfile
from actornet.actors.link import LinkSettings
from actornet.actors.service import ActorService
from actornet.actors.supervisor import SUPERVISOR_TOPIC, Supervisor
from actornet.dispatcher.core import Dispatcher
from actornet.dispatcher.web import monitoring_site
from actornet.protocols import codec
from actornet.protocols.codes import Kind


class Options(usage.Options):
    """Command-line options of ``twistd actornet``."""

    optParameters = [
        ["config", "c", None, "the network's TOML config file (required)"],
    ]

    def postOptions(self):
        if not self["config"]:
            raise usage.UsageError("--config FILE is required")
        try:
            self["network"] = configuration.load(self["config"])
        except configuration.ConfigError as e:
            raise usage.UsageError(str(e)) from e


def client_endpoint_for(address):
    """A client endpoint string that reaches a listening port from this host."""
    if isinstance(address, IPv4Address):
        host = "127.0.0.1" if address.host == "0.0.0.0" else address.host
        return f"tcp:host={host}:port={address.port}"
    if isinstance(address, IPv6Address):
        host = "\\:\\:1" if address.host == "::" else address.host.replace(":", "\\:")
        return f"tcp6:host={host}:port={address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name.decode() if isinstance(address.name, bytes) else address.name
        return f"unix:path={name}"
    raise ValueError(f"cannot connect back to a listener at {address!r}")


def unix_path(description):
    """The socket path of a ``unix:`` server endpoint description."""
    tokens = re.split(r"(?<!\\):", description[len("unix:"):])
    for token in tokens:
        if token.startswith("address="):
            token = token[len("address="):]
        elif "=" in token:
            continue
        return token.replace("\\:", ":")
    raise ValueError(f"no socket path in {description!r}")


class DispatcherService(MultiService):
    """Listens on every configured endpoint and runs the dispatcher.

    Once listening it logs one splash line, writes the connection-info file,
    and starts the actors configured beside it.  Stopping removes the file.
    """

    log = Logger()

    def __init__(self, config, reactor, actors=()):
        super().__init__()
        self.config = config
        self.settings = config.settings
        self.reactor = reactor
        self.actors = actors
        self.dispatcher = Dispatcher(reactor, config.settings)
        self.ports = []
        self.http_port = None
        self.connect_endpoint = None
        self.connection_file = None
        if config.connection_file is not None:
            self.connection_file = configuration.connection_file_path(
                config.connection_file or None)

    def _listen(self, description, factory):
        """Listen on ``description`` now; on failure close what is open and raise.

        tcp, unix and ssl endpoints listen synchronously, so a port that is in
        use stops the start-up with a message instead of a half-started network.
        """
        if description.startswith("unix:"):
            self._clear_stale_socket(description, unix_path(description))
        outcome = []
        endpoints.serverFromString(self.reactor, description).listen(factory).addBoth(
            outcome.append)
        if not outcome or isinstance(outcome[0], Failure):
            self._refuse(description, outcome[0].getErrorMessage() if outcome
                         else "the endpoint did not answer")
        return outcome[0]

    def _clear_stale_socket(self, description, path):
        """DAOS dRPC's rule, made safe: never start over a live socket, replace a
        stale one, and never remove anything that is not a socket."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            self._refuse(description, f"{path} exists and is not a socket; not touching it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
            self.log.info("removed the stale socket {path}", path=path)
            return
        finally:
            probe.close()
        self._refuse(description, f"another process is listening on {path}")

    def _refuse(self, description, why):
        for port in self.ports:
            port.stopListening()
        message = f"actornet: cannot listen on {description}: {why}"
        self.log.critical(message)
        raise SystemExit(message)

    def startService(self):
        factory = self.dispatcher.factory()
        for description in self.config.listen:
            self.ports.append(self._listen(description, factory))
        if self.config.http is not None:
            self.http_port = self._listen(self.config.http, monitoring_site(self.dispatcher))
        self.dispatcher.management.endpoints = self.config.listen
        self.dispatcher.management.on_shutdown = self._shutdown
        self.dispatcher.start()
        self.connect_endpoint = client_endpoint_for(self.ports[0].getHost())
        if self.connection_file is not None:
            connfile.write(self.connection_file, self.connect_endpoint, self.settings.token,
                           os.getpid())
        monitoring = ""
        if self.http_port is not None:
            where = self.http_port.getHost()
            monitoring = f"; metrics and status on http://{where.host}:{where.port}/"
        self.log.info("actornet dispatcher {name} listening on {where} (pid {pid}); "
                      "connect with {endpoint}{monitoring}", name=self.settings.name,
                      where=", ".join(self.config.listen), pid=os.getpid(),
                      endpoint=self.connect_endpoint, monitoring=monitoring)
        endpoint = endpoints.clientFromString(self.reactor, self.connect_endpoint)
        supervise(self.actors, endpoint, self.reactor, self.config.link_settings,
                  self._announce).setServiceParent(self)
        super().startService()

    def stopService(self):
        """Drain: stop listening, let requests in flight finish (up to
        ``drain_seconds``), then stop the actors and close every connection."""
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        for port in self.ports:
            await port.stopListening()
        if self.connection_file is not None:
            connfile.remove(self.connection_file, os.getpid())
        failed = await self.dispatcher.drain(self.settings.drain_seconds)
        if failed:
            self.log.warn("{count} requests were still in flight after {seconds}s and "
                          "were failed", count=failed, seconds=self.settings.drain_seconds)
        await super().stopService()
        await self.dispatcher.stop()
        if self.http_port is not None:
            await self.http_port.stopListening()

    def _announce(self, data):
        self.dispatcher.publish({"k": Kind.EVENT, "top": SUPERVISOR_TOPIC, "r": [],
                                 "src": self.dispatcher.name}, codec.encode(data))

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


def supervise(actors, endpoint, reactor, link_settings, announce=None):
    """A supervisor running the configured ``actors`` connected to ``endpoint``."""

    def start(actor, on_crash):
        return ActorService(actor, endpoint, reactor, link_settings, on_crash=on_crash)

    supervisor = Supervisor(reactor, start, announce)
    for actor in actors:
        supervisor.supervise(actor.name, lambda actor=actor: actor.build(reactor), actor.restart)
    return supervisor


def build(network, reactor):
    """The service tree for a loaded config."""
    root = Network(reactor)
    if network.dispatcher is not None:
        DispatcherService(network.dispatcher, reactor, network.actors).setServiceParent(root)
    else:
        endpoint = endpoints.clientFromString(reactor, network.join.connect)
        supervise(network.actors, endpoint, reactor,
                  LinkSettings(token=network.join.token)).setServiceParent(root)
    return root


def makeService(options):
    from twisted.internet import reactor

    return build(options["network"], reactor)
