"""The dispatcher's record of one connection, and the protocol that feeds it."""

import attrs

from actornet.dispatcher.snapshot import PeerView
from actornet.protocols.framing import FrameProtocol, no_delay


@attrs.define(eq=False)
class Peer:
    """One connected actor or client, as the dispatcher sees it.

    ``working`` holds the ids of requests this peer is handling, ``asking`` the
    ids of requests it is waiting on; both are kept by the in-flight table.
    ``stamp_prefix`` starts every stamp the peer makes; ``our_stamp`` is the
    constant part of the dispatcher's stamps on bags from this peer.
    ``via`` is the connection frames for this peer go through: the peer itself
    (a :class:`~actornet.dispatcher.remote.RemoteActor` names its dispatcher's
    link instead).  ``link`` is the remote dispatcher's name when this peer is
    a federation link (see :mod:`~actornet.dispatcher.federation`): its routes
    and its askers were vouched for by that dispatcher.  ``user`` is who is
    asking, as ``/metrics`` counts askers, set once the peer is admitted: the
    identity it presented when the network has ``[identities]`` (the user,
    shared by all its clients, so one-shot CLI clients do not each make a
    series), else the peer's own name.
    """

    conn_id: int
    protocol: object
    outbound: object
    connected_at: float
    name: str | None = None
    services: tuple = ()
    in_flight: int = 0
    handled: int = 0
    working: set = attrs.Factory(set)
    asking: set = attrs.Factory(set)
    topics: set = attrs.Factory(set)
    last_seen: float = 0.0
    last_sent: float = 0.0
    keepalives_in: int = 0
    keepalives_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    leaving: bool = False
    dropped_because: str | None = None
    identity: object = None
    stamp_prefix: bytes = b""
    our_stamp: bytes = b""
    address: str = ""
    register_timer: object = None
    via: object = None
    link: str | None = None
    claiming: bool = False
    user: str | None = None

    def __attrs_post_init__(self):
        self.via = self

    @property
    def label(self):
        """How logs and errors name this peer."""
        return self.name or f"connection {self.conn_id}"

    def view(self):
        """A read-only :class:`~actornet.dispatcher.snapshot.PeerView` of this peer."""
        return PeerView(self.name, self.services, self.conn_id, self.connected_at,
                        self.last_seen, self.keepalives_in, self.keepalives_out, self.in_flight,
                        self.handled, self.bytes_in, self.bytes_out, tuple(sorted(self.topics)),
                        self.outbound.congested, self.outbound.backlog)


class DispatcherProtocol(FrameProtocol):
    """Parses frames and passes them to the dispatcher; holds no logic of its own."""

    def __init__(self, dispatcher):
        super().__init__(dispatcher.outbox.cork)
        self.dispatcher = dispatcher
        self.max_frame = dispatcher.settings.max_frame_bytes
        self.peer = None

    def connectionMade(self):
        no_delay(self.transport)
        self.peer = self.dispatcher.connected(self)

    def dataReceived(self, data):
        """Any bytes are a sign of life, a frame cut in many reads included."""
        self.peer.last_seen = self.dispatcher.clock.seconds()
        super().dataReceived(data)

    def frameReceived(self, envelope_bytes, body):
        self.dispatcher.frame(self.peer, envelope_bytes, body)

    def frameTooLarge(self, length):
        self.dispatcher.frame_too_large(self.peer, length)

    def frameMalformed(self, error):
        self.dispatcher.refuse(self.peer, error)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.peer is not None:
            self.dispatcher.lost(self.peer, reason)
