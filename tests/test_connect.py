"""``actornet.connect(..., timeout=)``: a peer that never answers READY cannot keep a
caller waiting, and a peer that is not a dispatcher is named as such."""

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from actornet import Client, ProtocolError, RequestTimeout, connect
from actornet.protocols.codes import Kind
from actornet.protocols.framing import encode_frame


class NeverConnects:
    """An endpoint whose connection attempt hangs until it is cancelled."""

    def __init__(self):
        self.cancelled = False

    def connect(self, factory):
        def cancel(attempt):
            self.cancelled = True
            attempt.errback(ConnectionLost("cancelled"))
        return Deferred(cancel)


class Accepts:
    """An endpoint that connects at once to a StringTransport; ``link`` is the protocol."""

    def __init__(self):
        self.transport = StringTransport()
        self.link = None

    def connect(self, factory):
        self.link = factory.buildProtocol(None)
        self.link.makeConnection(self.transport)
        return succeed(self.link)


def connecting(endpoint, clock, timeout=2):
    return connect(endpoint, reactor=clock, runner=object(), timeout=timeout)


def test_connect_times_out_while_connecting_and_cancels_the_attempt():
    """A connection attempt that never completes fails RequestTimeout after ``timeout``
    and is cancelled, leaving no timer behind."""
    clock, endpoint = Clock(), NeverConnects()
    attempt = connecting(endpoint, clock)
    clock.advance(1.9)
    assert not attempt.called
    clock.advance(0.1)
    error = pytest.raises(RequestTimeout, attempt.result.raiseException).value
    attempt.addErrback(lambda _: None)
    assert str(error) == "timeout: could not connect to the dispatcher within 2s"
    assert endpoint.cancelled
    assert clock.getDelayedCalls() == []


def test_connect_times_out_without_ready_and_closes_the_connection():
    """A peer that accepts and never sends READY fails the connect with a timeout
    naming the phase, and the half-open connection is closed."""
    clock, endpoint = Clock(), Accepts()
    attempt = connecting(endpoint, clock, timeout=2.5)
    clock.advance(2.5)
    failures = []
    attempt.addErrback(failures.append)
    assert str(failures[0].value) == (
        "timeout: no READY from the dispatcher within 2.5s: is that a dispatcher?")
    assert endpoint.transport.disconnecting
    endpoint.link.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == []


def test_a_peer_that_sends_no_frames_is_named_not_a_dispatcher():
    """Bytes that are not a frame before READY fail the connect with a ProtocolError
    at once, rather than at the timeout."""
    clock, endpoint = Clock(), Accepts()
    attempt = connecting(endpoint, clock)
    endpoint.link.dataReceived(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert endpoint.transport.disconnecting
    endpoint.link.connectionLost(Failure(ConnectionDone()))
    failures = []
    attempt.addErrback(failures.append)
    assert isinstance(failures[0].value, ProtocolError)
    assert failures[0].value.message == (
        "the peer sent bytes that are not an actornet frame: is that a dispatcher?")
    assert clock.getDelayedCalls() == []


def test_ready_within_the_timeout_gives_the_client_and_no_timer():
    """READY before the timeout fires the Deferred with the client; the timer is gone."""
    clock, endpoint = Clock(), Accepts()
    attempt = connecting(endpoint, clock)
    endpoint.link.dataReceived(encode_frame({"k": Kind.READY, "id": 3, "name": "c"}))
    client = attempt.result
    assert isinstance(client, Client) and client.connected
    assert clock.getDelayedCalls() == []
