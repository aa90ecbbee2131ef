"""Flow control: a slow reader must not make the dispatcher's memory grow.

Each connection gets an :class:`OutboundGate`, registered as the streaming
producer of its own transport.  Twisted pauses that producer when the
transport's write buffer is full and resumes it when the buffer drains, which is
how the dispatcher learns a peer is slow without polling.  While a peer is
congested, whoever sends to it has its own reading paused (Twisted's
``pauseProducing`` on the sender's transport), so the backlog stops growing at
its source; when the gate drains, the senders are resumed.  Bytes written while
congested are counted, and past ``limit`` the peer is ``over_limit``: new
requests for it are refused with BUSY instead of being buffered.
"""

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class OutboundGate:
    """Tracks whether one peer's transport can take more bytes."""

    def __init__(self, transport, limit, stats):
        self.transport = transport
        self.limit = limit
        self.stats = stats
        self.congested = False
        self.backlog = 0
        self.blocked_senders = set()
        self.blockers = set()
        transport.registerProducer(self, True)

    @property
    def over_limit(self):
        return self.congested and self.backlog > self.limit

    def wrote(self, size, sender_gate):
        """Account for ``size`` bytes just written on behalf of ``sender_gate``."""
        if not self.congested:
            return
        self.backlog += size
        if sender_gate is not None and sender_gate is not self:
            sender_gate.block_on(self)

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
        self._release()

    def stopProducing(self):
        self.congested = False
        self._release()
        for gate in list(self.blockers):
            gate.blocked_senders.discard(self)
        self.blockers.clear()
        self.transport = None

    def _release(self):
        senders, self.blocked_senders = self.blocked_senders, set()
        for sender in senders:
            sender.unblock_from(self)
