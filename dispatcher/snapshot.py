"""A read-only picture of the dispatcher, for everyone who only looks.

Management (``mmi``), ``/metrics``, ``/status`` and the test kit read a
:class:`Snapshot`, never the dispatcher's own tables, so the dispatcher may
change how it keeps its state without breaking them, and nothing that looks
can change it by accident.  A snapshot costs one pass over the connections;
it is taken on demand, never per message.
"""

import attrs


@attrs.frozen
class PeerView:
    """One connected actor or client at the moment of the snapshot.

    ``congested``: its transport's buffer is full (a slow reader); ``backlog``:
    bytes written to it that still wait to be sent.
    """

    name: str
    services: tuple
    connection: int
    connected_at: float
    last_seen: float
    keepalives_in: int
    keepalives_out: int
    in_flight: int
    handled: int
    bytes_in: int
    bytes_out: int
    topics: tuple
    congested: bool
    backlog: int


@attrs.frozen
class Snapshot:
    """The dispatcher at time ``now`` (its clock's seconds)."""

    name: str
    host: str
    pid: int
    now: float
    started_at: float
    settings: object
    endpoints: tuple
    connections: int
    in_flight: int
    peers: tuple
    subscriptions: dict
    counters: dict
    requests: dict
    latency: dict
    federation: dict | None = None
    """What :meth:`~actornet.dispatcher.federation.Federation.view` shows of the
    other dispatchers; None without a federation."""
    known_services: frozenset = frozenset()
    """Every service an actor ever served, here or (in a federation) elsewhere."""
    askers: dict = attrs.field(factory=dict)
    """``{asker name: requests answered}``, bounded (see
    :class:`~actornet.dispatcher.metrics.Metrics`)."""
    errors: dict = attrs.field(factory=dict)
    """``{error name: failed requests}``, bounded the same way."""

    @property
    def actors(self):
        """Registered peers that serve at least one service."""
        return tuple(peer for peer in self.peers if peer.services)

    @property
    def names(self):
        """Every registered name."""
        return frozenset(peer.name for peer in self.peers)

    def serving(self, service):
        """The names of the actors serving ``service`` now."""
        return sorted(peer.name for peer in self.peers if service in peer.services)

    @property
    def services(self):
        """``{service: [actor names]}``."""
        names = sorted({service for peer in self.peers for service in peer.services})
        return {service: self.serving(service) for service in names}

    def summary(self):
        """The few numbers a health check needs (``/status`` and ``show_dispatcher``)."""
        return {
            "name": self.name,
            "pid": self.pid,
            "uptime": round(self.now - self.started_at, 3),
            "connections": self.connections,
            "actors": len(self.actors),
            "in_flight": self.in_flight,
        }
