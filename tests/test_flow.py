"""Flow control against readers that drain at their own pace, on a Clock.

A reader's transport is Twisted's own ``FileDescriptor`` write buffer in front
of a fake socket that takes only the bytes the test lets through, so the
dispatcher's gate is paused and resumed exactly as on TCP: paused once more
than 64 KiB wait, resumed only when the buffer is empty.  Every test runs on
that connection bare and behind Twisted's TLS (as the dispatcher listens with
TLS), the reader decrypting what it reads.
"""

import struct
from itertools import count

import pytest
from test_dispatcher import FakePeer, Star, decode_frames, stamp
from twisted.internet import ssl
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from actornet import certs
from actornet.dispatcher.flow import unsent_meter
from actornet.fetch import CHUNK
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status

KiB = 1024
ANSWER = codec.encode(b"x" * (64 * KiB))


class Socket(FileDescriptor):
    """A connected transport whose far end reads only what :meth:`read` lets out."""

    def __init__(self):
        super().__init__(MemoryReactor())
        self.connected = 1
        self.protocol = None
        self.received = bytearray()
        self.room = 0
        self.aborted = False

    def writeSomeData(self, data):
        taken = min(len(data), self.room)
        self.room -= taken
        self.received += data[:taken]
        return taken

    @property
    def waiting(self):
        """Bytes still in Twisted's buffer: written, not yet taken by the socket."""
        return len(self.dataBuffer) - self.offset + self._tempDataLen

    def read(self, leaving=0):
        """The far end reads all but the last ``leaving`` bytes waiting for it."""
        self.room = max(self.waiting - leaving, 0)
        while self.room and self.waiting:
            self.doWrite()
        self.room = 0

    def abortConnection(self):
        self.aborted = True
        self.connectionLost(Failure(ConnectionLost()))

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.protocol.connectionLost(reason)

    def getPeer(self):
        return IPv4Address("TCP", "127.0.0.1", 40000)

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 5570)


class Plaintext(Protocol):
    """What the reader's TLS client decrypts."""

    def __init__(self):
        self.received = bytearray()

    def dataReceived(self, data):
        self.received += data


class SocketPeer(FakePeer):
    """A fake peer on a :class:`Socket`, through TLS when ``tls`` holds the server's
    and the client's options: it sees only the frames it has read.  What it sends
    goes straight to the dispatcher's protocol, which is all it needs."""

    def __init__(self, dispatcher, clock, tls=None):
        self.dispatcher = dispatcher
        self.clock = clock
        self.socket = Socket()
        factory = dispatcher.factory()
        if tls is not None:
            factory = TLSMemoryBIOFactory(tls[0], False, factory, clock)
        self.socket.protocol = factory.buildProtocol(None)
        self.socket.protocol.makeConnection(self.socket)
        self.protocol = getattr(self.socket.protocol, "wrappedProtocol", self.socket.protocol)
        self.peer = self.protocol.peer
        self.plain = self.client = None
        if tls is not None:
            self.client = TLSMemoryBIOFactory(tls[1], True, Factory.forProtocol(Plaintext),
                                              clock).buildProtocol(None)
            self.client.makeConnection(StringTransport())
            self.plain = self.client.wrappedProtocol
            while self.client.transport.value():
                self._handshake()

    def _handshake(self):
        hello = self.client.transport.value()
        self.client.transport.clear()
        self.socket.protocol.dataReceived(hello)
        self.socket.read()
        self.client.dataReceived(bytes(self.socket.received))
        self.socket.received.clear()

    def frames(self):
        """Every whole frame read since the last call, decoded."""
        self.clock.advance(0)
        self.socket.read()
        return self.frames_read()

    def frames_read(self):
        """The whole frames among the bytes read so far; a cut one waits for the rest."""
        data = self.socket.received
        if self.plain is not None:
            if data:
                self.client.dataReceived(bytes(data))
            data.clear()
            data = self.plain.received
        whole = 0
        while whole + 4 <= len(data):
            (length,) = struct.unpack_from(">I", data, whole)
            if whole + 4 + length > len(data):
                break
            whole += 4 + length
        frames = decode_frames(bytes(data[:whole]))
        del data[:whole]
        return frames


@pytest.fixture(scope="module")
def tls_options(tmp_path_factory):
    """A dispatcher's TLS options, and a client's that takes any certificate."""
    folder = tmp_path_factory.mktemp("certs")
    certs.init(folder)
    certificate, key = certs.issue(folder, "dispatcher", servers=["localhost"])
    server = ssl.CertificateOptions(privateKey=certs.read_key(key),
                                    certificate=certs.read_certificate(certificate))
    return server, ssl.CertificateOptions()


@pytest.fixture(params=["tcp", "tls"])
def wire(request, tls_options):
    """Nothing for a bare connection, TLS options for one behind TLS."""
    return tls_options if request.param == "tls" else None


def reader_and_worker(wire, **settings):
    """A dispatcher with its sweep running, a reader on a :class:`Socket`, a worker."""
    star = Star(**settings)
    star.dispatcher.start()
    reader = SocketPeer(star.dispatcher, star.clock, wire)
    reader.register("reader")
    worker = star.actor("worker", ["svc"])
    return star, reader, worker


def serve(worker, count, body=ANSWER):
    """The worker answers the ``count`` requests it has with ``body``."""
    requests = [envelope for envelope, _ in worker.frames() if envelope["k"] == Kind.REQUEST]
    assert len(requests) == count
    for envelope in requests:
        worker.answer(envelope, body=body)


def slow_reader_with_answers(wire, answers):
    """A reader with a 512 KiB limit, 2 s to drain, that asked for ``answers``
    answers the worker has given (the reader has read none of them)."""
    star, reader, worker = reader_and_worker(wire, outbound_limit_bytes=512 * KiB,
                                             slow_consumer_seconds=2.0,
                                             keepalive_interval=10.0)
    for rid in range(answers):
        reader.ask(rid, "svc")
    serve(worker, answers)
    return star, reader, worker


def test_a_reader_that_keeps_a_steady_window_outstanding_is_never_refused(wire):
    """A reader that keeps eight 1 MiB answers outstanding (a fetch's chunks, just
    under the default 8 MiB limit) and each time reads all but the last kilobyte,
    so its buffer never empties, is never refused BUSY however much it reads."""
    star, reader, worker = reader_and_worker(wire)
    chunk = codec.encode(b"x" * CHUNK)
    asked = count()
    for _ in range(8):
        reader.ask(next(asked), "svc")
    serve(worker, 8, chunk)
    statuses = []
    for _ in range(10):
        reader.socket.read(leaving=1000)
        answers = reader.frames_read()
        statuses += [envelope["st"] for envelope, _ in answers]
        for _ in answers:
            reader.ask(next(asked), "svc")
        serve(worker, len(answers), chunk)
        assert reader.peer.outbound.congested
    assert star.dispatcher.stats["slow_reader_refused"] == 0
    assert statuses == [Status.SUCCESS] * 70


def test_a_reader_that_stops_reading_is_refused_then_disconnected(wire):
    """Answers for a reader that stopped reading are refused BUSY once more than its
    limit waits for it, and it is disconnected after slow_consumer_seconds."""
    star, reader, worker = slow_reader_with_answers(wire, 12)
    assert star.dispatcher.stats["slow_reader_refused"] >= 1
    assert 512 * KiB < reader.socket.waiting < 512 * KiB + 2 * len(ANSWER)
    star.clock.advance(1.0)
    assert not reader.socket.aborted
    star.clock.advance(9.0)
    assert reader.socket.aborted
    assert star.dispatcher.stats["slow_consumers"] == 1
    assert "reader" not in star.dispatcher.registry.by_name
    star.dispatcher.stop()


def test_a_reader_back_under_its_limit_is_not_disconnected_later(wire):
    """A reader over its limit that reads enough to come back under it (its buffer
    still not empty) starts afresh: it is neither refused nor disconnected."""
    star, reader, worker = slow_reader_with_answers(wire, 10)
    assert reader.peer.outbound.over_limit
    star.clock.advance(1.5)
    reader.socket.read(leaving=256 * KiB)
    assert not reader.peer.outbound.over_limit
    star.clock.advance(9.0)
    assert not reader.socket.aborted
    reader.ask(10, "svc")
    serve(worker, 1)
    reader.socket.read()
    statuses = [envelope["st"] for envelope, _ in reader.frames_read()
                if envelope["k"] == Kind.RESPONSE]
    assert statuses[-1] == Status.SUCCESS
    assert star.dispatcher.stats["slow_consumers"] == 0
    star.dispatcher.stop()


def test_the_gate_measures_a_twisted_buffer_and_counts_where_it_cannot():
    """A Twisted connection's unsent bytes are measured; a transport without those
    attributes (a test transport, or a Twisted that renamed them) gets no meter, and
    the gate counts what was written instead."""
    connection = FileDescriptor(reactor=MemoryReactor())
    connection.connected = True
    connection.startWriting = lambda: None
    connection.writeSequence([b"x" * 10, b"y" * 5])
    assert unsent_meter(connection)() == 15
    renamed = FileDescriptor(reactor=MemoryReactor())
    del renamed._tempDataLen
    assert unsent_meter(renamed) is None
    assert unsent_meter(StringTransport()) is None


def test_progress_for_a_reader_over_its_limit_is_dropped_and_the_worker_goes_on():
    """A progress report for a reader over its limit is dropped (counted), not queued,
    and the worker is neither paused nor refused."""
    star, reader, worker = slow_reader_with_answers(None, 12)
    assert reader.peer.outbound.over_limit
    reader.ask(99, "svc")
    request, _ = worker.only(Kind.REQUEST)
    route = request["r"] + [stamp("worker", len(request["r"]) + 1)]
    worker.send(messages.progress(request["id"], route), codec.encode({"done": 1}))
    assert star.dispatcher.stats["progress_dropped"] == 1
    assert worker.transport.producerState == "producing"
    worker.answer(request)
    assert len(star.dispatcher.inflight) == 0
    star.dispatcher.stop()
