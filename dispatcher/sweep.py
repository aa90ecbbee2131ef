"""The dispatcher's periodic look at every connection: who is silent, who is slow.

Ten times per holdtime the sweep drops peers silent for longer than the
holdtime, disconnects readers over their outbound limit for longer than
``slow_consumer_seconds`` (NATS's slow-consumer rule), and sends a keepalive
on every link that has been quiet for an interval.  A peer whose reading the
dispatcher has paused cannot be blamed for its silence.
"""

from twisted.logger import Logger

from actornet.protocols import messages


class Sweep:
    """One pass over ``peers`` each time it is called."""

    log = Logger()

    def __init__(self, clock, peers, liveness, settings, stats, outbox):
        self.clock = clock
        self.peers = peers
        self.liveness = liveness
        self.slow_consumer_seconds = settings.slow_consumer_seconds
        self.stats = stats
        self.outbox = outbox

    def __call__(self):
        now = self.clock.seconds()
        liveness = self.liveness
        for peer in list(self.peers):
            if peer.outbound.reading_paused:
                peer.last_seen = now
            elif peer.outbound.slow_for(now) > self.slow_consumer_seconds:
                self.stats["slow_consumers"] += 1
                self._drop(peer, f"a slow consumer: {peer.outbound.backlog} bytes waiting for "
                                 f"it for {peer.outbound.slow_for(now):.1f} s", "disconnecting")
                continue
            elif liveness.expired(now, peer.last_seen):
                self.stats["keepalive_expired"] += 1
                self._drop(peer, liveness.silence(now, peer.last_seen), "dropping")
                continue
            if liveness.keepalive_due(now, peer.last_sent):
                peer.keepalives_out += 1
                self.outbox.send(peer, messages.keepalive())

    def _drop(self, peer, why, verb):
        peer.dropped_because = why
        self.log.warn("{verb} {peer}: {why}", verb=verb, peer=peer.label, why=why)
        peer.protocol.transport.abortConnection()
