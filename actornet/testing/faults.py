"""Faults on one actor's link: frames delayed or dropped, in either direction.

A :class:`LinkFault` is a plain description; the kit's wrapper around the
actor's end of its connection (:class:`~actornet.testing.links.KitLink`)
applies it to whole frames, so it works the same on sockets and in memory.
Directions are named from the dispatcher's side, as a user pictures the star:
``inbound`` frames go from the actor to the dispatcher, ``outbound`` frames
from the dispatcher to the actor.
"""

from actornet.protocols import codec
from actornet.protocols.codes import Kind

MESSAGES = frozenset({Kind.REQUEST, Kind.RESPONSE, Kind.EVENT})
DIRECTIONS = ("inbound", "outbound", "both")


class LinkFault:
    """Delay or drop the frames of one connection.

    @param delay: seconds every frame waits.
    @param drop: how many frames of ``kinds`` to drop (None: every one until
        healed); keepalives pass by default, so the link stays "alive".
    @param direction: ``"inbound"``, ``"outbound"`` or ``"both"``.
    """

    def __init__(self, *, delay=0.0, drop=0, kinds=MESSAGES, direction="both"):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction is one of {DIRECTIONS}, not {direction!r}")
        self.delay = delay
        self.drop_left = drop
        self.kinds = frozenset(kinds)
        self.inbound = direction in ("inbound", "both")
        self.outbound = direction in ("outbound", "both")
        self.dropped = 0
        self.delayed = 0

    def dropping(self, envelope_bytes):
        """Whether to drop the frame with this envelope (and count it)."""
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
