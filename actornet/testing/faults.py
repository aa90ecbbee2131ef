"""Faults on one actor's link, injected at the dispatcher's end of it.

A :class:`LinkFault` sits between the dispatcher and one connection: frames
from the actor (``inbound``) and to it (``outbound``) can be delayed or
dropped.  It works the same on sockets and in memory, because it wraps the
dispatcher's own protocol and transport rather than the wire.
"""

from actornet.protocols import codec
from actornet.protocols.codes import Kind

MESSAGES = frozenset({Kind.REQUEST, Kind.RESPONSE, Kind.EVENT})


class LinkFault:
    """Delay or drop the frames of one connection.

    @param delay: seconds every frame waits (in both directions).
    @param drop: how many frames of ``kinds`` to drop (None: every one until
        healed); keepalives pass by default, so the link stays "alive".
    @param direction: ``"inbound"``, ``"outbound"`` or ``"both"``.
    """

    def __init__(self, protocol, clock, *, delay=0.0, drop=0, kinds=MESSAGES,
                 direction="both"):
        self.protocol = protocol
        self.clock = clock
        self.delay = delay
        self.drop_left = drop
        self.kinds = frozenset(kinds)
        self.direction = direction
        self.dropped = 0
        self.delayed = 0
        self._frame_received = protocol.frameReceived
        transport = protocol.transport
        self._write_sequence = transport.writeSequence
        if direction in ("inbound", "both"):
            protocol.frameReceived = self._inbound
        if direction in ("outbound", "both"):
            transport.writeSequence = self._outbound

    def heal(self):
        """Put the link back as it was."""
        self.protocol.__dict__.pop("frameReceived", None)
        self.protocol.transport.__dict__.pop("writeSequence", None)

    def _dropping(self, envelope_bytes):
        if self.drop_left == 0:
            return False
        try:
            kind = codec.decode(envelope_bytes).get("k")
        except ValueError:
            return False
        if kind not in self.kinds:
            return False
        if self.drop_left is not None:
            self.drop_left -= 1
        self.dropped += 1
        return True

    def _inbound(self, envelope_bytes, body):
        if self._dropping(envelope_bytes):
            return
        if self.delay:
            self.delayed += 1
            self.clock.callLater(self.delay, self._frame_received, envelope_bytes, body)
        else:
            self._frame_received(envelope_bytes, body)

    def _outbound(self, parts):
        parts = list(parts)
        if len(parts) == 3 and self._dropping(parts[1]):
            return
        if self.delay:
            self.delayed += 1
            self.clock.callLater(self.delay, self._write_later, parts)
        else:
            self._write_sequence(parts)

    def _write_later(self, parts):
        if not getattr(self.protocol.transport, "disconnected", False):
            self._write_sequence(parts)
