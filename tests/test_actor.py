"""Deterministic tests of the actor side: hooks, timers and deadlines on a Clock."""

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from actornet import Actor, RequestTimeout, handler
from actornet.actors.link import ActorLink
from actornet.actors.service import ActorService
from actornet.protocols import codec
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame
from actornet.protocols.stamp import stamp_bytes


class NeverConnects:
    """A client endpoint whose connection attempts never finish."""

    def connect(self, factory):
        return Deferred()


class Ticker(Actor):
    periodic_interval = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticks = 0

    def periodic(self):
        self.ticks += 1


def linked(actor, clock):
    """``actor`` registered over a StringTransport link; returns the link's transport."""
    link = ActorLink(actor.context.session, clock)
    transport = StringTransport()
    link.makeConnection(transport)
    transport.clear()
    link.dataReceived(encode_frame({"k": Kind.READY, "id": 5, "name": actor.name, "ka": 10.0}))
    return link, transport


def frames(transport):
    """Decode every frame written to ``transport`` and clear it."""
    data, out = transport.value(), []
    transport.clear()
    while data:
        length = int.from_bytes(data[:4], "big")
        env_length = int.from_bytes(data[4:8], "big")
        out.append((codec.decode(data[8:8 + env_length]), data[8 + env_length:4 + length]))
        data = data[4 + length:]
    return out


def test_periodic_runs_every_interval_even_when_not_connected():
    """periodic() runs once per periodic_interval on the actor's clock."""
    clock = Clock()
    actor = Ticker("ticker", clock=clock)
    service = ActorService(actor, NeverConnects(), clock)
    service.startService()
    clock.advance(1.9)
    assert actor.ticks == 0
    clock.pump([0.1, 2.0, 2.0])
    assert actor.ticks == 3
    service.stopService()
    clock.advance(10)
    assert actor.ticks == 3


def test_max_lifetime_stops_the_actor():
    """An actor whose max_lifetime passes stops its service."""
    clock = Clock()
    actor = Actor("brief", options={"max_lifetime": 5}, clock=clock)
    service = ActorService(actor, NeverConnects(), clock)
    service.startService()
    clock.advance(4.9)
    assert service.running
    clock.advance(0.2)
    assert not service.running


def test_ask_times_out_on_the_askers_clock_exactly_once():
    """An unanswered ask fails with RequestTimeout at its deadline; a late answer is ignored."""
    clock = Clock()
    actor = Actor("asker", clock=clock)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m", {"x": 1}, timeout=3)
    (request, body), = frames(transport)
    assert request["ttl"] == 3.0 and codec.decode(body) == {"x": 1}
    clock.advance(2.9)
    assert not answer.called
    clock.advance(0.2)
    failures = []
    answer.addErrback(failures.append)
    assert failures[0].check(RequestTimeout)
    link.dataReceived(encode_frame({"k": Kind.RESPONSE, "id": request["id"],
                                    "st": Status.SUCCESS}, codec.encode({})))
    assert len(failures) == 1


def test_handler_names_and_unknown_methods():
    """@handler(name=...) serves under that name; an unknown method gets UNKNOWN_METHOD."""

    class Named(Actor):
        @handler(name="do-it")
        def do_it(self, bag):
            return {"done": bag["n"]}

    clock = Clock()
    actor = Named("named", clock=clock)
    link, transport = linked(actor, clock)
    request = {"k": Kind.REQUEST, "id": 9, "svc": "s", "m": "do-it", "src": "x", "r": []}
    link.dataReceived(encode_frame(request, codec.encode({"n": 4})))
    link.dataReceived(encode_frame(dict(request, id=10, m="nope"), codec.encode({})))
    (ok, ok_body), (missing, _) = frames(transport)
    assert ok["st"] == Status.SUCCESS and codec.decode(ok_body) == {"done": 4}
    assert missing["st"] == Status.UNKNOWN_METHOD
    assert missing["err"] == ["UnknownMethod", "named has no method 'nope' (it has: do-it)"]


@pytest.mark.parametrize("stamping", [True, False])
def test_stamping_can_be_switched_off_per_actor(stamping):
    """An actor with stamp_route False answers with the route it was given."""

    class Quiet(Actor):
        stamp_route = stamping

        @handler
        def m(self, bag):
            return None

    clock = Clock()
    actor = Quiet("quiet", clock=clock)
    link, transport = linked(actor, clock)
    given = [stamp_bytes("asker", "h", 1, 1, 1, 0.0, 0.0, 1),
             stamp_bytes("dispatcher", "h", 2, 1, 1, 0.0, 0.0, 2)]
    link.dataReceived(encode_frame(
        {"k": Kind.REQUEST, "id": 1, "svc": "s", "m": "m", "r": given}, codec.encode({})))
    (answer, _), = frames(transport)
    stamps = [codec.decode(stamp) for stamp in answer["r"]]
    names = [stamp[0] for stamp in stamps]
    assert names == (["asker", "dispatcher", "quiet"] if stamping else ["asker", "dispatcher"])
    if stamping:
        assert stamps[2][3] == 5 and stamps[2][7] == 3


def test_malformed_body_is_answered_malformed_body():
    """A request whose body is not a CBOR map gets MALFORMED_BODY, not a crash."""

    class Strict(Actor):
        @handler
        def m(self, bag):
            return None

    clock = Clock()
    actor = Strict("strict", clock=clock)
    link, transport = linked(actor, clock)
    for body in (b"\xff", codec.encode([1, 2])):
        link.dataReceived(encode_frame({"k": Kind.REQUEST, "id": 1, "svc": "s", "m": "m"}, body))
    statuses = [envelope["st"] for envelope, _ in frames(transport)]
    assert statuses == [Status.MALFORMED_BODY, Status.MALFORMED_BODY]


def test_link_sends_keepalives_only_when_idle_and_drops_a_silent_dispatcher():
    """With ka=1 and multiplier 3 the link pings an idle line, and aborts after 3 s of silence."""
    clock = Clock()
    actor = Actor("lonely", clock=clock)
    link = ActorLink(actor.context.session, clock)
    transport = StringTransport()
    link.makeConnection(transport)
    link.dataReceived(encode_frame({"k": Kind.READY, "id": 1, "name": "lonely", "ka": 1.0}))
    transport.clear()
    for _ in range(2):
        clock.advance(1.0)
        link.dataReceived(encode_frame({"k": Kind.KEEPALIVE}))
    assert [envelope["k"] for envelope, _ in frames(transport)] == [Kind.KEEPALIVE] * 2
    clock.advance(0.5)
    actor.publish("busy", {})
    clock.advance(0.5)
    assert [envelope["k"] for envelope, _ in frames(transport)] == [Kind.EVENT]
    clock.advance(2.0)
    assert not transport.disconnected
    clock.advance(1.0)
    assert transport.disconnected
