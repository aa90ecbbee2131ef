"""Pub/sub: who listens to which topic, and events sent to them.

Each peer remembers its own topics so that a lost connection is unsubscribed
from all of them in one pass, and a topic with no subscriber left is dropped.
A peer may publish only where its identity allows, never under ``actornet.``
(the dispatcher's own topics, e.g. the death watch); a subscriber that reads
too slowly misses events (counted) rather than holding the publisher back.
With a journal, every event a peer publishes is recorded in it.
"""

from twisted.logger import Logger

from actornet.dispatcher.routes import fresh_route
from actornet.protocols import codec, messages
from actornet.protocols.codes import RESERVED_TOPIC_PREFIX, Status
from actornet.protocols.framing import frame_parts


class Topics:
    """Subscribers by topic, and the events frames for them."""

    log = Logger()

    def __init__(self, outbox, stats):
        self.outbox = outbox
        self.stats = stats
        self.relay = None
        self.journal = None
        self._by_topic = {}

    # -- frames from peers ---------------------------------------------------

    def subscribe_to(self, peer, envelope, body, now):
        self.subscribe(peer, envelope["top"])

    def unsubscribe_from(self, peer, envelope, body, now):
        self.unsubscribe(peer, envelope["top"])

    def event(self, peer, envelope, body, now):
        """An event from ``peer``: checked, stamped with a fresh route, published."""
        topic = envelope["top"]
        if topic.startswith(RESERVED_TOPIC_PREFIX):
            why = f"topics under {RESERVED_TOPIC_PREFIX} are published by the dispatcher alone"
        elif not peer.identity.may("publish", topic):
            why = peer.identity.refusal("publish", topic)
        else:
            route = envelope.setdefault("r", [])
            fresh_route(route, peer)
            self.outbox.stamp(route, peer, now)
            envelope["src"] = peer.name
            if self.journal is not None:
                self.journal.record(envelope, body, topic, None)
            self.publish(envelope, body)
            return
        self.stats["forbidden"] += 1
        self.log.warn("{peer} may not publish on {topic!r}: {why}", peer=peer.label,
                      topic=topic, why=why)
        self.outbox.send(peer, messages.tell_failed(Status.UNAUTHORIZED, why))

    def publish(self, envelope, body=b""):
        """Send an event published here to every subscriber of its topic, here and,
        in a federation, at every other dispatcher (``relay``, given the frame's
        parts, so the envelope is encoded once for both)."""
        if self.relay is None:
            self.deliver(envelope, body)
            return
        parts = frame_parts(codec.encode(envelope), body)
        self.relay(parts)
        self.deliver(envelope, parts=parts)

    def deliver(self, envelope, body=b"", parts=None):
        """Send an event to the subscribers of its topic at this dispatcher (as
        ``parts``, when its frame is made already); a subscriber over its outbound
        limit misses it (counted), and nobody is held back for it."""
        subscribers = self.subscribers(envelope["top"])
        if not subscribers:
            self.stats["events_unheard"] += 1
            return
        if parts is None:
            parts = frame_parts(codec.encode(envelope), body)
        for subscriber in subscribers:
            if subscriber.outbound.over_limit:
                self.stats["events_dropped_slow_reader"] += 1
                continue
            self.outbox.write(subscriber, parts)

    # -- the table -----------------------------------------------------------

    def subscribe(self, peer, topic):
        self._by_topic.setdefault(topic, set()).add(peer)
        peer.topics.add(topic)

    def unsubscribe(self, peer, topic):
        peer.topics.discard(topic)
        subscribers = self._by_topic.get(topic)
        if subscribers is not None:
            subscribers.discard(peer)
            if not subscribers:
                del self._by_topic[topic]

    def forget(self, peer):
        """``peer`` is gone: take it out of every topic it listened to."""
        for topic in list(peer.topics):
            self.unsubscribe(peer, topic)

    def subscribers(self, topic):
        """The peers listening to ``topic`` (a copy, safe to iterate while sending)."""
        return tuple(self._by_topic.get(topic, ()))

    def names(self):
        """``{topic: [subscriber names]}``, for snapshots."""
        return {topic: sorted(peer.label for peer in peers)
                for topic, peers in sorted(self._by_topic.items())}
