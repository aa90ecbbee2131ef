"""Who listens to which topic (pub/sub), kept from both sides.

Each peer remembers its own topics so that a lost connection is unsubscribed
from all of them in one pass, and a topic with no subscriber left is dropped.
"""


class Topics:
    """Subscribers by topic."""

    def __init__(self):
        self._by_topic = {}

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
