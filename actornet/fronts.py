"""The dispatcher's doors for people and other programs: the http site (the
dashboard, ``/metrics``, ``/status``), the health endpoint in a thread, and the
WebSocket gateway.

They are built here from the config, apart from the actors' own listeners, so
:class:`~actornet.tap.DispatcherService` only has to listen on them, start
them after the dispatcher and stop them in its order: the gateway with the
other listeners, before the drain (it is a door for requests); the http site,
the health thread and the watch they read last, so a scraper sees the drain.
"""

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from actornet.client import connect
from actornet.dashboard.site import Dashboard
from actornet.dispatcher.health import HealthServer
from actornet.dispatcher.watch import ReactorWatch
from actornet.dispatcher.web import monitoring_site
from actornet.gateway.admission import origins_of
from actornet.gateway.protocol import Gateway
from actornet.listening import ListenFailed, is_loopback, listener, listens_on_loopback

GATEWAY_CONNECT_TIMEOUT = 5.0
"""Seconds a gateway connection's client has to connect and register: autobahn
drops a WebSocket whose opening handshake takes longer anyway."""


class Fronts:
    """The http site, the health endpoint and the gateway a config asks for.

    ``http`` and ``gateway_listener`` are listener services (or None) for the
    owner to listen on with its own; ``dashboard`` is a service for the owner
    to parent; ``health`` listens in :meth:`listen_health`.
    """

    log = Logger()

    def __init__(self, config, dispatcher, reactor):
        self.config = config
        self.reactor = reactor
        self.connect_endpoint = None
        self.watch = ReactorWatch(reactor, dispatcher.snapshot)
        self.dashboard = self.http = None
        if config.http is not None:
            self.dashboard = Dashboard(dispatcher, reactor)
            site = monitoring_site(dispatcher, self.watch,
                                   config.monitoring_token(listens_on_loopback(config.http)),
                                   root=self.dashboard.root())
            self.http = listener(reactor, config.http, site)
        self.gateway = self.gateway_listener = None
        if config.gateway is not None:
            self.gateway = Gateway(config.gateway, self._gateway_client, config.settings.token,
                                   config.settings.name)
            self.gateway_listener = listener(reactor, config.gateway.listen,
                                             self.gateway.factory)
        self.health = None
        if config.health is not None:
            host, port = config.health
            self.health = HealthServer(self.watch, host, port,
                                       config.monitoring_token(is_loopback(host)))

    @property
    def listeners(self):
        """The listener services to listen on with the dispatcher's own."""
        return [each for each in (self.http, self.gateway_listener) if each is not None]

    def listen_health(self):
        """Bind the health endpoint's port (with the other listeners, before twistd
        drops privileges).

        @raise ListenFailed: naming the address, when it cannot be bound.
        """
        if self.health is None:
            return
        try:
            self.health.listen()
        except OSError as e:
            raise ListenFailed(f"cannot listen on health {self.health.host}:"
                               f"{self.health.port}: {e.strerror or e}") from e

    def start(self, connect_endpoint):
        """Start serving, once the dispatcher runs and listens at ``connect_endpoint``
        (where each WebSocket's client connects)."""
        self.connect_endpoint = connect_endpoint
        if self.http is not None or self.health is not None:
            self.watch.start()
        if self.health is not None:
            self.health.start()
        if self.gateway is not None and self.config.gateway.origins is None \
                and self.http is not None:
            self.gateway.allow_origins(origins_of(self.http.endpoint.port.getHost()))

    def urls(self):
        """``{"http": ..., "health": ..., "gateway": ...}``, each None when not
        served; a listener on a unix socket is given as its endpoint string."""
        http = health = gateway = None
        if self.http is not None:
            http = _listener_url("http", self.http)
        if self.health is not None:
            health = _url("http", self.health.host, self.health.port, "/status")
        if self.gateway_listener is not None:
            gateway = _listener_url("ws", self.gateway_listener)
        return {"http": http, "health": health, "gateway": gateway}

    def splash(self):
        """What the dispatcher's splash line adds about these doors."""
        urls = self.urls()
        said = ""
        if urls["http"] is not None:
            said = f"; dashboard, metrics and status on {urls['http']}"
        if urls["health"] is not None:
            said += f"; health (answers while the reactor is blocked) on {urls['health']}"
        return said

    def say_where_the_gateway_is(self):
        if self.gateway is not None:
            self.log.info("actornet: WebSocket gateway on {where} (browser pages allowed "
                          "from: {origins})", where=self.urls()["gateway"],
                          origins=", ".join(self.gateway.origins) or "none")

    def _gateway_client(self, name, token):
        """A client of the dispatcher for one WebSocket connection of the gateway."""
        endpoint = clientFromString(self.reactor, self.connect_endpoint)
        return connect(endpoint, token, name=name, reactor=self.reactor,
                       timeout=GATEWAY_CONNECT_TIMEOUT)

    async def stop(self):
        """Stop the http site, the health thread and the watch (the gateway's
        listener is stopped by the owner with the others)."""
        if self.http is not None:
            await self.http.stopService()
        if self.health is not None:
            self.health.stop()
        self.watch.stop()


def _url(scheme, host, port, path="/"):
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def _listener_url(scheme, service):
    """The URL of a listening service, or its endpoint string when it listens
    on no address and port (a unix socket)."""
    where = service.endpoint.port.getHost()
    if isinstance(where, IPv4Address | IPv6Address):
        return _url(scheme, where.host, where.port)
    return service.description
