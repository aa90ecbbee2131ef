"""In-memory connections on a Clock: the cluster kit's deterministic mode.

Every byte an actor or the dispatcher writes is delivered by a call scheduled
on a :class:`~twisted.internet.task.Clock`, so the order of everything that
happens is fixed by the order it was written in and by virtual time.  An
:class:`AutoJump` driver advances that clock from the real reactor: due calls
run at once, and when nothing is due it jumps to the next timer, so a
30-second timeout takes no real time at all, and ``await client.ask(...)``
works exactly as it does on real sockets.
"""

from itertools import count

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from twisted.python.failure import Failure
from zope.interface import implementer

_ports = count(40000)


@implementer(ITransport, IConsumer, IPushProducer)
class MemoryTransport:
    """One end of an in-memory connection; what it writes arrives at ``other``.

    ``pauseProducing`` stops reading (bytes wait in an inbox, as they would in
    a socket buffer); ``abortConnection`` ends both ends at once.
    """

    def __init__(self, clock, protocol, host, peer):
        self.clock = clock
        self.protocol = protocol
        self.host = host
        self.peer = peer
        self.other = None
        self.reading = True
        self.inbox = []
        self.disconnecting = False
        self.disconnected = False
        self.producer = None

    def write(self, data):
        self._send(bytes(data))

    def writeSequence(self, data):
        self._send(b"".join(data))

    def _send(self, data):
        if not self.disconnecting and not self.disconnected:
            self.clock.callLater(0, self.other._deliver, data)

    def _deliver(self, data):
        if self.disconnected:
            return
        if not self.reading:
            self.inbox.append(data)
            return
        self.protocol.dataReceived(data)

    def pauseProducing(self):
        self.reading = False

    def resumeProducing(self):
        self.reading = True
        waiting, self.inbox = self.inbox, []
        for data in waiting:
            self.clock.callLater(0, self._deliver, data)

    def stopProducing(self):
        self.loseConnection()

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def loseConnection(self):
        """Close after what was already written has been delivered."""
        if self.disconnecting or self.disconnected:
            return
        self.disconnecting = True
        self.clock.callLater(0, self._close, ConnectionDone)

    def abortConnection(self):
        """Close both ends now; nothing still on the way arrives."""
        self._close(ConnectionLost)

    def _close(self, reason):
        if self.disconnected:
            return
        for end in (self, self.other):
            end.disconnected = True
        for end in (self, self.other):
            end.protocol.connectionLost(Failure(reason()))

    def getPeer(self):
        return self.peer

    def getHost(self):
        return self.host


class MemoryEndpoint:
    """A client endpoint that connects straight to the server factory
    ``server_factory()`` returns (asked at every connect, so a restarted
    dispatcher is found)."""

    def __init__(self, clock, server_factory):
        self.clock = clock
        self.server_factory = server_factory

    def connect(self, factory):
        client_address = IPv4Address("TCP", "127.0.0.1", next(_ports))
        server_address = IPv4Address("TCP", "127.0.0.1", 5570)
        client = factory.buildProtocol(server_address)
        server = self.server_factory().buildProtocol(client_address)
        to_server = MemoryTransport(self.clock, client, client_address, server_address)
        to_client = MemoryTransport(self.clock, server, server_address, client_address)
        to_server.other, to_client.other = to_client, to_server
        server.makeConnection(to_client)
        client.makeConnection(to_server)
        return succeed(client)


class AutoJump:
    """Drives a Clock from the real reactor: run what is due, else jump to the next timer.

    Virtual time never jumps while real work is outstanding (a handler waiting
    on a thread, e.g. the file share hashing a file, as ``runner.busy`` counts,
    or whatever ``busy()`` says, e.g. the journal's database thread), or a 30 s
    virtual timeout would pass in the few real milliseconds the thread takes.
    """

    def __init__(self, clock, reactor, runner, busy=lambda: False):
        self.clock = clock
        self.reactor = reactor
        self.runner = runner
        self.busy = busy
        self._call = None
        self._running = False
        self._pause = 0

    def start(self):
        self._running = True
        self._call = self.reactor.callLater(0, self._tick)

    def _real_work_pending(self):
        """Work on real threads: the actors' runner, or the reactor's own pool
        (name resolution for a real HTTP request a test makes, say)."""
        return bool(self.runner.busy or self.reactor.getThreadPool().working
                    or self.reactor.threadCallQueue or self.busy())

    def _tick(self):
        self._call = None
        self._step()
        if self._running and self._call is None:
            self._call = self.reactor.callLater(self._pause, self._tick)

    def _step(self):
        """Run what is due; jump to the next timer when no real work is pending."""
        calls = self.clock.getDelayedCalls()
        now = self.clock.seconds()
        if calls and not self._real_work_pending():
            next_time = min(call.getTime() for call in calls)
            self._pause = 0
            self.clock.advance(max(0.0, next_time - now))
            return
        self._pause = 0.001
        if calls and min(call.getTime() for call in calls) <= now:
            self.clock.advance(0)

    def stop(self):
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
