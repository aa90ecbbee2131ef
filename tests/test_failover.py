"""Several dispatcher endpoints: the failover endpoint on a Clock, then actors and
clients that fail over between two real dispatchers on loopback."""

import socket

import pytest
import pytest_twisted
from sample_actors import Counter
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from actornet import Unauthorized, connect
from actornet.actors.service import ActorService
from actornet.failover import (
    CONNECT_TIMEOUT,
    FailoverEndpoint,
    NoEndpointConnected,
    endpoint_for,
)
from actornet.listening import DescribedEndpoint
from actornet.testing import Cluster

pytestmark = pytest.mark.timeout(30)


class Stub:
    """An endpoint that refuses, hangs or connects (to a StringTransport), as set in
    ``answer``; every try is appended to the shared ``tried`` list."""

    def __init__(self, name, tried, answer="connect"):
        self.name = name
        self.tried = tried
        self.answer = answer
        self.cancelled = False
        self.protocol = None

    def connect(self, factory):
        self.tried.append(self.name)
        if self.answer == "refuse":
            return fail(ConnectionRefusedError())
        if self.answer == "hang":
            return Deferred(self._cancel)
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(StringTransport())
        return succeed(self.protocol)

    def _cancel(self, attempt):
        self.cancelled = True
        attempt.errback(ConnectionLost("cancelled"))

    def __str__(self):
        return self.name


def stubs(*answers):
    tried = []
    return tried, [Stub(name, tried, answer) for name, answer in zip("abc", answers,
                                                                     strict=False)]


FACTORY = Factory.forProtocol(Protocol)


def test_the_first_endpoint_that_connects_is_used_and_named():
    """A refusing first endpoint is passed over; the endpoint logs as the one reached."""
    tried, (a, b) = stubs("refuse", "connect")
    failover = FailoverEndpoint([a, b], Clock())
    assert failover.connect(FACTORY).result is b.protocol
    assert tried == ["a", "b"]
    assert str(failover) == "b" and failover.current is b
    assert repr(failover) == "FailoverEndpoint(a, b)"
    assert verifyObject(IStreamClientEndpoint, failover)


def test_the_next_attempt_starts_with_the_endpoint_that_connected_last():
    """Tries go b (last good), then on round the list: c, then a."""
    tried, (a, b, c) = stubs("refuse", "connect", "refuse")
    failover = FailoverEndpoint([a, b, c], Clock())
    failover.connect(FACTORY)
    b.answer, a.answer = "refuse", "connect"
    failover.connect(FACTORY)
    assert tried == ["a", "b", "b", "c", "a"]
    assert failover.current is a


def test_a_silent_endpoint_is_given_up_after_the_connect_timeout():
    """An endpoint that never connects is cancelled after CONNECT_TIMEOUT, and only
    then is the next one tried; no timer is left behind."""
    clock = Clock()
    tried, (a, b) = stubs("hang", "connect")
    attempt = FailoverEndpoint([a, b], clock).connect(FACTORY)
    clock.advance(CONNECT_TIMEOUT - 0.1)
    assert tried == ["a"] and not attempt.called
    clock.advance(0.1)
    assert a.cancelled and tried == ["a", "b"]
    assert attempt.result is b.protocol
    assert clock.getDelayedCalls() == []


def test_an_attempt_fails_once_every_endpoint_failed_naming_each():
    """With no endpoint connecting, the attempt fails once, naming every endpoint
    and why; ``refused`` says whether all of them refused."""
    clock = Clock()
    tried, (a, b) = stubs("refuse", "hang")
    attempt = FailoverEndpoint([a, b], clock, connect_timeout=2).connect(FACTORY)
    clock.advance(2)
    failures = []
    attempt.addErrback(failures.append)
    error = failures[0].value
    assert isinstance(error, NoEndpointConnected)
    assert str(error) == ("a: Connection was refused by other side.; "
                          "b: User timeout caused connection failure: no connection within 2s.")
    assert not error.refused
    tried, endpoints = stubs("refuse", "refuse")
    refused = FailoverEndpoint(endpoints, Clock()).connect(FACTORY)
    assert refused.addErrback(lambda failure: failure.value.refused).result is True


def test_cancelling_an_attempt_cancels_the_endpoint_being_tried_and_tries_no_other():
    """A cancelled attempt (ClientService stopping) stops where it is."""
    tried, (a, b) = stubs("hang", "connect")
    attempt = FailoverEndpoint([a, b], Clock()).connect(FACTORY)
    attempt.cancel()
    attempt.addErrback(lambda _: None)
    assert a.cancelled and tried == ["a"]


def test_real_tcp_endpoints_are_tried_in_order():
    """Over Twisted's MemoryReactor: a refused TCP connection to the first host
    starts one to the second, whose connection is the attempt's."""
    reactor = MemoryReactorClock()
    failover = endpoint_for(reactor, ["tcp:host=10.0.0.1:port=5570",
                                      "tcp:host=10.0.0.2:port=5570"])
    attempt = failover.connect(FACTORY)
    host, port, factory, *_ = reactor.tcpClients[0]
    assert (host, port) == ("10.0.0.1", 5570)
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    host, port, factory, *_ = reactor.tcpClients[1]
    assert (host, port) == ("10.0.0.2", 5570)
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    assert attempt.called
    assert str(failover) == "tcp:host=10.0.0.2:port=5570"


def test_connect_refuses_an_empty_list_at_once():
    """``connect([])`` raises instead of returning a Deferred that can never connect."""
    with pytest.raises(ValueError, match="no endpoint to connect to"):
        connect([], reactor=Clock())


def test_one_endpoint_string_gives_a_plain_endpoint():
    """With nothing to fail over to, one string connects as it always did."""
    endpoint = endpoint_for(MemoryReactorClock(), ["tcp:host=10.0.0.1:port=5570"])
    assert isinstance(endpoint, DescribedEndpoint)


def test_client_service_reaches_the_other_endpoint_one_delay_after_losing_its_connection():
    """ClientService's reconnect is unchanged: one retry delay after the connection
    through ``a`` is lost (and ``a`` now refuses), it is connected through ``b``."""
    clock = Clock()
    tried, (a, b) = stubs("connect", "connect")
    service = ClientService(FailoverEndpoint([a, b], clock), FACTORY, clock=clock,
                            retryPolicy=lambda attempt: 1.0)
    service.startService()
    first = a.protocol
    a.answer = "refuse"
    first.transport.loseConnection()
    first.connectionLost(Failure(ConnectionLost()))
    clock.advance(0.9)
    assert tried == ["a"]
    clock.advance(0.1)
    assert tried == ["a", "a", "b"]
    assert service.whenConnected().result.transport is b.protocol.transport
    service.stopService()


# -- two real dispatchers on loopback ------------------------------------------


def refusing_endpoint():
    """A loopback endpoint nothing listens on (connections to it are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"tcp:host=127.0.0.1:port={port}"


class Logged:
    """The text of every log event while it is installed."""

    def __init__(self):
        self.lines = []

    def __call__(self, event):
        self.lines.append(formatEvent(event))

    def __enter__(self):
        globalLogPublisher.addObserver(self)
        return self.lines

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self)


@pytest_twisted.ensureDeferred
async def test_an_actor_fails_over_to_the_second_dispatcher_and_keeps_its_state():
    """An actor given two dispatchers registers with the first; when the first stops
    it registers under the same name with the second, its call count going on,
    and its log names the dispatcher it reached each time."""
    from twisted.internet import reactor

    first, second = await Cluster().start(), await Cluster().start()
    actor = Counter("counter", clock=reactor)
    service = ActorService(actor, endpoint_for(reactor, [first.endpoint, second.endpoint]),
                           reactor, retry_policy=lambda attempt: 0.05)
    try:
        with Logged() as lines:
            service.startService()
            await first.registered("counter")
            client = await first.client()
            assert (await client.ask("count", "count"))["calls"] == 1
            assert (await client.ask("count", "count"))["calls"] == 2
            await first.stop()
            await second.registered("counter")
            await service.whenReady()
            client = await second.client()
            assert (await client.ask("count", "count"))["calls"] == 3
        assert actor.calls == 3
        connected = [line for line in lines if line.startswith("actor counter connected")]
        assert [line.split(" (connection")[0] for line in connected] == [
            f"actor counter connected to the dispatcher at {first.endpoint}",
            f"actor counter connected to the dispatcher at {second.endpoint}"]
    finally:
        await service.stopService()
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_a_client_connects_through_the_first_endpoint_that_answers(actornet_cluster):
    """``connect([dead, live])`` passes over the refused endpoint and asks through the live one."""
    client = await connect([refusing_endpoint(), actornet_cluster.endpoint])
    try:
        assert client.connected
        answer = await client.ask("mmi", "show_dispatcher")
        assert answer["connections"] == 1
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_a_client_with_no_endpoint_answering_fails_naming_each():
    """Two refused endpoints fail the connect with one error naming both."""
    dead = [refusing_endpoint(), refusing_endpoint()]
    with pytest.raises(NoEndpointConnected) as raised:
        await connect(dead)
    assert raised.value.refused
    assert str(raised.value).startswith(f"{dead[0]}: Connection was refused")
    assert f"; {dead[1]}: Connection was refused" in str(raised.value)


@pytest_twisted.ensureDeferred
async def test_a_refusal_after_failing_over_names_the_endpoint_reached():
    """A wrong token is named with the endpoint that was reached, not the list."""
    guarded = await Cluster(token="right").start()
    try:
        with pytest.raises(Unauthorized) as raised:
            await connect([refusing_endpoint(), guarded.endpoint], "wrong")
        assert str(raised.value).startswith(f"unauthorized: {guarded.endpoint}: ")
    finally:
        await guarded.stop()
