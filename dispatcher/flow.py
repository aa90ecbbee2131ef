"""Flow control: a slow reader must not make the dispatcher's memory grow, and
must never hold back the actors that serve everyone.

Each connection gets an :class:`OutboundGate`, registered as the streaming
producer of its own transport: Twisted pauses it when the transport's write
buffer is full and resumes it when the buffer is empty again, which is how the
dispatcher learns a peer is slow without polling.  While a peer is paused
(``congested``) its gate looks at how many bytes still wait in its transport;
past ``limit`` it is ``over_limit``.  What waits is measured, not counted since
the pause: Twisted resumes a producer only once the whole buffer has gone, so
a reader that keeps a steady few MiB outstanding stays paused for good, yet is
never over its limit.

Two rules follow, as in NATS:

- A peer's *own sending* is held back: while a worker is congested, whoever
  sends it requests has its reading paused (Twisted's ``pauseProducing`` on
  the sender's transport) until the worker drains, and new requests for a
  worker over its limit are refused BUSY.
- A slow *consumer* is never allowed to freeze its producers: answers and
  events for a reader over its limit are refused for that reader alone (BUSY,
  counted), and a reader that stays over its limit for too long is
  disconnected (see :meth:`OutboundGate.slow_for`); one that comes back under
  its limit starts afresh.
"""

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IPushProducer
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer


def unsent_meter(transport):
    """A function of no arguments giving the bytes written to ``transport`` that
    have not left this process yet, or None for a transport that does not show
    its buffer (in-memory and test transports).

    A TCP or UNIX connection is a Twisted ``FileDescriptor``: what waits is its
    ``dataBuffer`` from ``offset`` on, plus the ``_tempDataLen`` bytes of the
    writes not yet moved into it.  A TLS connection (``TLSMemoryBIOProtocol``)
    adds the cleartext it keeps until its handshake is done (``_appSendBuffer``)
    and what its small-write aggregator keeps for the next reactor turn; the
    rest is ciphertext in the connection below, a few bytes per 16 KiB record
    more than was written.  Frames the dispatcher holds while it handles a read
    count once that read is done and they reach the transport.  These are
    Twisted's own attributes, not its API: a Twisted that names them otherwise
    gets None here, and the gate falls back to counting what was written.
    """
    layers = []
    while isinstance(transport, TLSMemoryBIOProtocol):
        layers.append(transport)
        transport = transport.transport
    if not isinstance(transport, FileDescriptor) or not all(
            hasattr(layer, "_appSendBuffer") for layer in layers) or not all(
            hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen")):
        return None
    connection = transport

    def unsent():
        held = len(connection.dataBuffer) - connection.offset + connection._tempDataLen
        for layer in layers:
            held += sum(map(len, layer._appSendBuffer))
            held += sum(map(len, getattr(getattr(layer, "_aggregator", None), "_buffer", ())))
        return held

    return unsent


@implementer(IPushProducer)
class OutboundGate:
    """Tracks whether one peer's transport can take more bytes."""

    def __init__(self, protocol, limit, stats, clock):
        self.transport = protocol.transport
        self.limit = limit
        self.stats = stats
        self.clock = clock
        self.congested = False
        self.over_since = None
        self.blocked_senders = set()
        self.blockers = set()
        self._unsent = unsent_meter(protocol.transport)
        self._written = 0
        protocol.produceFor(self)

    @property
    def backlog(self):
        """Bytes waiting to be sent to this peer: what its transport still holds or,
        for a transport that does not show it, what was written since it became
        congested."""
        return self._written if self._unsent is None else self._unsent()

    @property
    def over_limit(self):
        """Whether this peer is congested with more than ``limit`` bytes waiting;
        ``over_since`` keeps when it went over until it is back under."""
        return self.congested and self._judge()

    def _judge(self):
        """Whether more than ``limit`` bytes wait; notes when this peer went over
        and forgets it once it is back under."""
        over = self.backlog > self.limit
        if not over:
            self.over_since = None
        elif self.over_since is None:
            self.over_since = self.clock.seconds()
        return over

    def wrote(self, size, requester=None):
        """Account for ``size`` bytes just written; ``requester`` is the gate of the
        peer whose own request this is (paused while this peer is congested)."""
        if not self.congested:
            return
        self._written += size
        self._judge()
        if requester is not None and requester is not self:
            requester.block_on(self)

    def slow_for(self, now):
        """Seconds this peer has been over its limit (0 when it is not)."""
        return now - self.over_since if self.over_limit else 0.0

    def block_on(self, congested_gate):
        """Stop reading from this peer until ``congested_gate`` drains."""
        if congested_gate in self.blockers:
            return
        if not self.blockers:
            self.stats["senders_paused"] += 1
            self.transport.pauseProducing()
        self.blockers.add(congested_gate)
        congested_gate.blocked_senders.add(self)

    def unblock_from(self, drained_gate):
        self.blockers.discard(drained_gate)
        if not self.blockers and self.transport is not None:
            self.transport.resumeProducing()

    @property
    def reading_paused(self):
        """Whether the dispatcher has stopped reading from this peer."""
        return bool(self.blockers)

    def pauseProducing(self):
        if not self.congested:
            self.congested = True
            self.stats["congestions"] += 1

    def resumeProducing(self):
        self.congested = False
        self._written = 0
        self.over_since = None
        self._release()

    def stopProducing(self):
        self.congested = False
        self.over_since = None
        self._release()
        for gate in list(self.blockers):
            gate.blocked_senders.discard(self)
        self.blockers.clear()
        self.transport = None

    def _release(self):
        senders, self.blocked_senders = self.blocked_senders, set()
        for sender in senders:
            sender.unblock_from(self)
