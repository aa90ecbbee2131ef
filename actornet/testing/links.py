"""The kit's wrappers around connections, installed at the factory.

Nothing in the dispatcher or the actors knows it is being tested: the kit
wraps the protocols their factories build (Twisted's ``WrappingFactory``).

- :class:`WatchedFactory` wraps the dispatcher's listening factory: after every
  chunk the dispatcher reads, and every connection it loses, the kit re-checks
  what tests wait for.
- :class:`KitEndpoint` wraps an actor's (or client's) client endpoint: its
  connections get a :class:`KitLink`, which does the same on the actor's side
  and can cut, freeze, delay or drop that one link.
"""

import struct

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

_U32 = struct.Struct(">I")


class WatchedProtocol(ProtocolWrapper):
    def dataReceived(self, data):
        super().dataReceived(data)
        self.factory.notify()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.notify()


class WatchedFactory(WrappingFactory):
    """Builds the wrapped factory's protocols; ``notify()`` after each event."""

    protocol = WatchedProtocol
    noisy = False

    def __init__(self, wrapped, notify):
        super().__init__(wrapped)
        self.notify = notify

    def connections(self):
        """The wrappers of the connections open now."""
        return list(self.protocols)


class KitLink(WatchedProtocol):
    """One actor's end of its link, as the kit builds it.

    Frames pass through whole; ``fault`` (a
    :class:`~actornet.testing.faults.LinkFault`) delays or drops them.
    """

    def __init__(self, factory, wrapped):
        super().__init__(factory, wrapped)
        self.fault = None
        self.frozen = False
        self.lost = False
        self._buffer = bytearray()

    # -- reading (frames from the dispatcher) -------------------------------

    def dataReceived(self, data):
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            end = 4 + _U32.unpack_from(buffer)[0]
            if len(buffer) < end:
                break
            frame = bytes(buffer[:end])
            del buffer[:end]
            self._read(frame)
        self.factory.notify()

    def _read(self, frame):
        fault = self.fault
        if fault is None or not fault.outbound:
            self.wrappedProtocol.dataReceived(frame)
        elif not fault.dropping(_envelope(frame)):
            self._later(fault, self._deliver, frame)

    def _deliver(self, frame):
        if not self.lost:
            self.wrappedProtocol.dataReceived(frame)
            self.factory.notify()

    # -- writing (frames to the dispatcher) -----------------------------------

    def writeSequence(self, parts):
        """Links write each frame as ``[header, envelope, body...]`` (see
        :func:`~actornet.protocols.framing.frame_parts`)."""
        fault = self.fault
        if fault is None or not fault.inbound:
            super().writeSequence(parts)
            return
        parts = list(parts)
        if not fault.dropping(parts[1]):
            self._later(fault, self._send, parts)

    def _send(self, parts):
        if not self.lost:
            self.transport.writeSequence(parts)

    def _later(self, fault, function, argument):
        if fault.delay:
            fault.delayed += 1
            self.factory.clock.callLater(fault.delay, function, argument)
        else:
            function(argument)

    # -- faults ----------------------------------------------------------------

    def freeze(self):
        """Stop reading (a hung process, as the dispatcher sees it)."""
        self.frozen = True
        self.transport.pauseProducing()

    def thaw(self):
        if self.frozen and not self.lost:
            self.frozen = False
            self.transport.resumeProducing()

    def connectionLost(self, reason):
        self.lost = True
        super().connectionLost(reason)


class KitLinkFactory(WatchedFactory):
    protocol = KitLink

    def __init__(self, wrapped, notify, clock, on_link):
        super().__init__(wrapped, notify)
        self.clock = clock
        self.on_link = on_link

    def buildProtocol(self, addr):
        link = super().buildProtocol(addr)
        self.on_link(link)
        return link


@implementer(IStreamClientEndpoint)
class KitEndpoint:
    """Connects like ``endpoint``, with each connection wrapped in a :class:`KitLink`.

    @param on_link: called with every new KitLink (the kit keeps the latest per
        actor name).
    """

    def __init__(self, endpoint, notify, clock, on_link):
        self.endpoint = endpoint
        self.notify = notify
        self.clock = clock
        self.on_link = on_link

    def connect(self, factory):
        wrapping = KitLinkFactory(factory, self.notify, self.clock, self.on_link)
        return self.endpoint.connect(wrapping).addCallback(lambda link: link.wrappedProtocol)


def _envelope(frame):
    (length,) = _U32.unpack_from(frame, 4)
    return frame[8:8 + length]
