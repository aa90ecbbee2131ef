"""Events across a federation: published at one dispatcher, heard at every other.

An event published here (by an actor, or the dispatcher's own death watch) is
sent once on ``actornet.<network>.events.<this dispatcher>`` as the frame it
is; every other dispatcher checks it like any frame from a peer, stamps it as
having come through its link to the publisher's dispatcher, and delivers it
to its own subscribers only (so nothing is relayed twice).
"""

import struct

from twisted.logger import Logger

from actornet.protocols import codec
from actornet.protocols.codes import RESERVED_TOPIC_PREFIX, Kind
from actornet.protocols.envelope import MalformedEnvelope, check

_FRAME = struct.Struct(">II")


class EventRelay:
    """Sends this dispatcher's events to the others and delivers theirs here.

    @param links: ``{dispatcher name: link peer}``, the federation's, kept by it.
    @param connected: a function telling whether NATS is reached now.
    """

    log = Logger()

    def __init__(self, dispatcher, bus, prefix, links, connected):
        self.dispatcher = dispatcher
        self.bus = bus
        self.subject = f"{prefix}.events.{dispatcher.name}"
        self.links = links
        self.connected = connected
        self.stats = dispatcher.stats

    def relay(self, parts):
        """An event published here (the parts of its frame) goes to every other
        dispatcher's subscribers."""
        if self.connected():
            self.bus.publish(self.subject, b"".join(parts))

    def event_in(self, subject, data):
        """An event another dispatcher published, for the subscribers here."""
        sender = subject.rpartition(".")[2]
        link = self.links.get(sender)
        if link is None:
            self.stats["federation_stale_messages"] += 1
            return
        try:
            total, size = _FRAME.unpack_from(data)
            if 4 + total != len(data) or 8 + size > len(data):
                raise MalformedEnvelope("not one whole frame")
            envelope = codec.decode(data[8:8 + size])
            if check(envelope) is not Kind.EVENT:
                raise MalformedEnvelope("not an event")
        except (ValueError, struct.error) as e:
            self.stats["federation_bad_messages"] += 1
            self.log.warn("federation: ignored an event from {sender}: {why}", sender=sender,
                          why=e)
            return
        route = envelope.setdefault("r", [])
        self.dispatcher.outbox.stamp(route, link, self.dispatcher.clock.seconds())
        body = data[8 + size:]
        if envelope["top"].startswith(RESERVED_TOPIC_PREFIX):
            # Only a dispatcher publishes there: its actors' lives, for the dashboard.
            self.dispatcher.lifecycle_listeners.tell(envelope, body)
        self.dispatcher.topics.deliver(envelope, body)
