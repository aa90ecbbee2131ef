"""Flow control: a slow reader must not make the dispatcher's memory grow, and
must never hold back the actors that serve everyone.

Each connection gets an :class:`OutboundGate`, registered as the streaming
producer of its own transport: Twisted pauses it when the transport's write
buffer is full and resumes it when the buffer drains, which is how the
dispatcher learns a peer is slow without polling.  Bytes written while a peer
is congested are counted; past ``limit`` it is ``over_limit``.

Two rules follow, as in NATS:

- A peer's *own sending* is held back: while a worker is congested, whoever
  sends it requests has its reading paused (Twisted's ``pauseProducing`` on
  the sender's transport) until the worker drains, and new requests for a
  worker over its limit are refused BUSY.
- A slow *consumer* is never allowed to freeze its producers: answers and
  events for a reader over its limit are refused for that reader alone (BUSY,
  counted), and a reader that stays over its limit for too long is
  disconnected (see :meth:`OutboundGate.slow_for`).
"""

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class OutboundGate:
    """Tracks whether one peer's transport can take more bytes."""

    def __init__(self, protocol, limit, stats, clock):
        self.transport = protocol.transport
        self.limit = limit
        self.stats = stats
        self.clock = clock
        self.congested = False
        self.backlog = 0
        self.over_since = None
        self.blocked_senders = set()
        self.blockers = set()
        protocol.produceFor(self)

    @property
    def over_limit(self):
        return self.congested and self.backlog > self.limit

    def wrote(self, size, requester=None):
        """Account for ``size`` bytes just written; ``requester`` is the gate of the
        peer whose own request this is (paused while this peer is congested)."""
        if not self.congested:
            return
        self.backlog += size
        if self.over_since is None and self.backlog > self.limit:
            self.over_since = self.clock.seconds()
        if requester is not None and requester is not self:
            requester.block_on(self)

    def slow_for(self, now):
        """Seconds this peer has been over its limit (0 when it is not)."""
        return 0.0 if self.over_since is None else now - self.over_since

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
        self.backlog = 0
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
