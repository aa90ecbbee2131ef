"""``twistd actornet --config FILE``: options and the service tree.

One config may run a dispatcher alone, actors alone (joining a dispatcher
elsewhere), or both; actors in the dispatcher's process connect to it over
loopback exactly as remote actors do, so there is one code path to trust.
"""

import os

from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.logger import Logger
from twisted.python import usage

from actornet import config as configuration
from actornet import connfile
from actors.service import ActorService
from dispatcher.core import Dispatcher


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


class DispatcherService(MultiService):
    """Listens on every configured endpoint and runs the dispatcher.

    Once listening it logs one splash line, writes the connection-info file,
    and starts the actors configured beside it.  Stopping removes the file.
    """

    log = Logger()

    def __init__(self, settings, reactor, actors=()):
        super().__init__()
        self.settings = settings
        self.reactor = reactor
        self.actors = actors
        self.dispatcher = Dispatcher(
            reactor, name=settings.name, token=settings.token,
            max_frame=settings.max_frame_bytes, hop_limit=settings.hop_limit,
            default_timeout=settings.request_timeout,
            keepalive_interval=settings.keepalive_interval,
            keepalive_multiplier=settings.keepalive_multiplier,
            outbound_limit=settings.outbound_limit_bytes)
        self.ports = []
        self.connect_endpoint = None
        self.connection_file = None
        if settings.connection_file is not None:
            self.connection_file = configuration.connection_file_path(
                settings.connection_file or None)

    def startService(self):
        factory = self.dispatcher.factory()
        for description in self.settings.listen:
            listening = endpoints.serverFromString(self.reactor, description).listen(factory)
            failures = []
            listening.addCallbacks(self.ports.append, failures.append)
            if failures:
                for port in self.ports:
                    port.stopListening()
                raise RuntimeError(
                    f"cannot listen on {description}: {failures[0].getErrorMessage()}")
        self.dispatcher.start()
        self.connect_endpoint = client_endpoint_for(self.ports[0].getHost())
        self.log.info("actornet dispatcher {name} listening on {where} (pid {pid}); "
                      "connect with {endpoint}", name=self.settings.name,
                      where=", ".join(self.settings.listen), pid=os.getpid(),
                      endpoint=self.connect_endpoint)
        if self.connection_file is not None:
            connfile.write(self.connection_file, self.connect_endpoint, self.settings.token,
                           os.getpid())
        endpoint = endpoints.clientFromString(self.reactor, self.connect_endpoint)
        for actor in self.actors:
            ActorService(actor.build(self.reactor), endpoint, self.reactor,
                         token=self.settings.token,
                         keepalive_multiplier=self.settings.keepalive_multiplier,
                         max_frame=self.settings.max_frame_bytes).setServiceParent(self)
        super().startService()

    def stopService(self):
        stopped = super().stopService()
        self.dispatcher.stop()
        for port in self.ports:
            port.stopListening()
        if self.connection_file is not None:
            connfile.remove(self.connection_file, os.getpid())
        return stopped


def build(network, reactor):
    """The service tree for a loaded config."""
    if network.dispatcher is not None:
        return DispatcherService(network.dispatcher, reactor, network.actors)
    root = MultiService()
    endpoint = endpoints.clientFromString(reactor, network.join.connect)
    for actor in network.actors:
        ActorService(actor.build(reactor), endpoint, reactor,
                     token=network.join.token).setServiceParent(root)
    return root


def makeService(options):
    from twisted.internet import reactor

    return build(options["network"], reactor)
