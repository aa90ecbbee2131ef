"""Deterministic tests of the dispatcher's routing and failure rules.

No sockets and no reactor: every peer is the dispatcher's own protocol connected
to a ``StringTransport``, and time is a ``Clock``.
"""

import struct

import pytest
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from actornet.dispatcher.core import Dispatcher
from actornet.dispatcher.settings import DispatcherSettings
from actornet.protocols import codec
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame, frame_parts
from actornet.protocols.stamp import stamp_bytes

_HEADER = struct.Struct(">II")


def decode_frames(data):
    """Split ``data`` into ``(envelope, body_bytes)`` pairs; every byte must belong to a frame."""
    frames = []
    offset = 0
    while offset < len(data):
        length, env_length = _HEADER.unpack_from(data, offset)
        body_start = offset + 8 + env_length
        stop = offset + 4 + length
        assert stop <= len(data), "a frame was cut short"
        frames.append((codec.decode(data[offset + 8:body_start]), data[body_start:stop]))
        offset = stop
    return frames


def stamp(name, hop, seq=1):
    """A well-formed route stamp in its wire form."""
    return stamp_bytes(name, "host", 1, 1, seq, 0.0, 0.0, hop)


class FakePeer:
    """One connection to the dispatcher, driven by hand: frames in, frames out."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.transport = StringTransport()
        self.protocol = dispatcher.factory().buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        self.peer = self.protocol.peer

    def send(self, envelope, body=b""):
        self.protocol.dataReceived(encode_frame(envelope, body))

    def send_raw(self, data):
        self.protocol.dataReceived(data)

    def frames(self):
        """Every frame written to this peer since the last call, decoded."""
        frames = decode_frames(self.transport.value())
        self.transport.clear()
        return frames

    def envelopes(self):
        return [envelope for envelope, _ in self.frames()]

    def only(self, kind=None):
        """The single frame written since the last call; fails if there is not exactly one."""
        frames = self.frames()
        assert len(frames) == 1, f"expected one frame, got {frames!r}"
        envelope, body = frames[0]
        if kind is not None:
            assert envelope["k"] == kind, envelope
        return envelope, body

    def register(self, name, services=(), **extra):
        """Register and return the READY envelope."""
        self.send({"k": Kind.REGISTER, "name": name, "svcs": list(services), **extra})
        envelope, _ = self.only(Kind.READY)
        return envelope

    def ask(self, rid, service, method="run", body=b"", **extra):
        self.send({"k": Kind.REQUEST, "id": rid, "svc": service, "m": method, **extra}, body)

    def answer(self, request, status=Status.SUCCESS, body=b"", **extra):
        """Answer ``request`` (an envelope this peer received) the way an actor does."""
        route = request.get("r", []) + [stamp(self.peer.name, len(request.get("r", [])) + 1)]
        self.send({"k": Kind.RESPONSE, "id": request["id"], "st": status, "r": route, **extra},
                  body)

    def lose(self, reason=None):
        """The connection ends (what Twisted does after a close or a reset)."""
        self.protocol.connectionLost(Failure(reason or ConnectionDone()))


class Star:
    """A dispatcher on a Clock, and a way to connect fake peers to it."""

    def __init__(self, **options):
        self.clock = Clock()
        self.dispatcher = Dispatcher(self.clock, DispatcherSettings(**options))

    def connect(self):
        return FakePeer(self.dispatcher)

    def actor(self, name, services=()):
        peer = self.connect()
        peer.register(name, services)
        return peer


@pytest.fixture
def star():
    return Star()


def assert_closed_with(peer, status):
    envelope, _ = peer.only(Kind.REFUSED)
    assert envelope["st"] == status
    assert envelope["err"][0] == status.label
    assert peer.transport.disconnecting


# -- registration -------------------------------------------------------------


def test_ready_carries_connection_id_name_and_keepalive_interval():
    """READY tells each peer its own connection id, its name and the keepalive interval."""
    star = Star(keepalive_interval=2.5)
    first, second = star.connect(), star.connect()
    ready_second = second.register("second", ["svc"])
    ready_first = first.register("first")
    assert ready_first["id"] == first.peer.conn_id == 1
    assert ready_second["id"] == second.peer.conn_id == 2
    assert (ready_first["name"], ready_first["ka"]) == ("first", 2.5)
    assert star.dispatcher.registry.by_name == {"first": first.peer, "second": second.peer}


def test_second_peer_claiming_a_taken_name_is_refused_and_closed(star):
    """A name already registered is refused with NAME_TAKEN and the newcomer is hung up on."""
    holder = star.actor("alice", ["svc"])
    intruder = star.connect()
    intruder.send({"k": Kind.REGISTER, "name": "alice", "svcs": ["other"]})
    assert_closed_with(intruder, Status.NAME_TAKEN)
    assert star.dispatcher.registry.by_name["alice"] is holder.peer
    assert not holder.transport.disconnecting
    assert star.dispatcher.stats["name_taken"] == 1


@pytest.mark.parametrize("extra", [{}, {"tok": "wrong"}, {"tok": "sesame!"}, {"tok": ""}],
                         ids=["missing", "wrong", "longer", "empty"])
def test_register_without_the_right_token_is_unauthorized_and_closed(extra):
    """With a token set, REGISTER with a missing or wrong token gets UNAUTHORIZED and is closed."""
    star = Star(token="sesame")
    peer = star.connect()
    peer.send({"k": Kind.REGISTER, "name": "mallory", **extra})
    assert_closed_with(peer, Status.UNAUTHORIZED)
    assert "mallory" not in star.dispatcher.registry.by_name


def test_register_with_the_right_token_is_accepted():
    """With a token set, REGISTER carrying that token gets READY and stays open."""
    star = Star(token="sesame")
    peer = star.connect()
    ready = peer.register("alice", tok="sesame")
    assert ready["name"] == "alice"
    assert not peer.transport.disconnecting
    assert star.dispatcher.registry.by_name["alice"] is peer.peer


def test_request_before_register_is_unauthorized_and_closed(star):
    """A REQUEST from a peer that has not registered is refused with UNAUTHORIZED."""
    worker = star.actor("worker", ["svc"])
    stranger = star.connect()
    stranger.ask(1, "svc")
    assert_closed_with(stranger, Status.UNAUTHORIZED)
    assert worker.frames() == []
    assert len(star.dispatcher.inflight) == 0


# -- routing ------------------------------------------------------------------


def test_any_goes_to_the_worker_with_fewest_requests_in_flight(star):
    """Target ``any`` picks the worker with the fewest requests in flight, not the next in turn."""
    busy, idle = star.actor("busy", ["svc"]), star.actor("idle", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", tgt="busy")
    asker.ask(2, "svc", tgt="busy")
    assert len(busy.frames()) == 2
    asker.ask(3, "svc")
    assert idle.only(Kind.REQUEST)[0]["svc"] == "svc"
    asker.ask(4, "svc")
    assert len(idle.frames()) == 1
    assert busy.frames() == []
    assert (busy.peer.in_flight, idle.peer.in_flight) == (2, 2)


def test_all_gathers_one_answer_keyed_by_actor_including_errors(star):
    """Target ``all`` reaches every worker and the asker gets one map keyed by actor name."""
    one, two, three = (star.actor(n, ["svc"]) for n in ("one", "two", "three"))
    star.actor("bystander", ["other"])
    asker = star.actor("asker")
    asker.ask(9, "svc", tgt="all", body=codec.encode({"q": 1}))
    requests = {}
    for worker in (one, two, three):
        requests[worker.peer.name], body = worker.only(Kind.REQUEST)
        assert codec.decode(body) == {"q": 1}
    one.answer(requests["one"], body=codec.encode({"n": 1}))
    three.answer(requests["three"], status=Status.FAILURE, err=["KeyError", "no such key"])
    assert asker.frames() == []
    two.answer(requests["two"], body=codec.encode({"n": 2}))
    envelope, body = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (9, Status.SUCCESS)
    assert codec.decode(body) == {
        "one": {"status": 200, "result": {"n": 1}},
        "two": {"status": 200, "result": {"n": 2}},
        "three": {"status": 500, "error": {"type": "KeyError", "message": "no such key"}},
    }
    assert len(star.dispatcher.inflight) == 0


def test_named_target_reaches_only_that_actor(star):
    """A target naming one actor sends the request to it and to no other."""
    left, right = star.actor("left", ["svc"]), star.actor("right", ["svc"])
    asker = star.actor("asker")
    for rid in (1, 2, 3):
        asker.ask(rid, "svc", tgt="right")
    assert left.frames() == []
    assert len(right.frames()) == 3


def test_list_target_reaches_each_named_actor_and_no_other(star):
    """A target listing names sends the request to each listed actor only."""
    workers = {name: star.actor(name, ["svc"]) for name in ("a", "b", "c")}
    asker = star.actor("asker")
    asker.ask(1, "svc", tgt=["a", "c"], body=b"\xa0")
    assert workers["b"].frames() == []
    for name in ("a", "c"):
        envelope, body = workers[name].only(Kind.REQUEST)
        assert (envelope["src"], body) == ("asker", b"\xa0")
    assert star.dispatcher.inflight.get(1).worker is not star.dispatcher.inflight.get(2).worker


def test_unknown_service_is_answered_unknown_service_at_once(star):
    """A service no actor ever served is answered UNKNOWN_SERVICE without waiting."""
    star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(4, "nope")
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (4, Status.UNKNOWN_SERVICE)
    assert len(star.dispatcher.inflight) == 0


def test_known_service_without_live_actor_is_answered_no_workers_at_once(star):
    """A service whose actors have all left is answered NO_WORKERS without waiting."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    worker.lose()
    asker.ask(5, "svc")
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (5, Status.NO_WORKERS)
    assert len(star.dispatcher.inflight) == 0


@pytest.mark.parametrize("target", ["other", ["worker", "other"], "ghost"])
def test_named_actor_not_serving_the_service_is_answered_no_workers(star, target):
    """Naming an actor that does not serve the service (or does not exist) gives NO_WORKERS."""
    worker = star.actor("worker", ["svc"])
    star.actor("other", ["different"])
    asker = star.actor("asker")
    asker.ask(6, "svc", tgt=target)
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (6, Status.NO_WORKERS)
    assert worker.frames() == []
    assert len(star.dispatcher.inflight) == 0


# -- answers ------------------------------------------------------------------


def test_answer_reaches_each_asker_under_its_own_id(star):
    """Two askers using the same id each get their own worker's answer under that id."""
    worker = star.actor("worker", ["svc"])
    first, second = star.actor("first"), star.actor("second")
    first.ask(7, "svc", body=codec.encode({"who": "first"}))
    second.ask(7, "svc", body=codec.encode({"who": "second"}))
    requests = worker.frames()
    assert len({envelope["id"] for envelope, _ in requests}) == 2
    for envelope, body in reversed(requests):
        worker.answer(envelope, body=body)
    for asker in (first, second):
        envelope, body = asker.only(Kind.RESPONSE)
        assert (envelope["id"], envelope["src"]) == (7, "worker")
        assert codec.decode(body) == {"who": asker.peer.name}
    assert len(star.dispatcher.inflight) == 0


def test_every_pass_through_the_dispatcher_adds_one_consecutive_stamp(star):
    """The dispatcher appends one stamp each way, numbered one past the previous hop."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", r=[stamp("asker", 1)])
    request, _ = worker.only(Kind.REQUEST)
    stamps = [codec.decode(s) for s in request["r"]]
    assert [s[0] for s in stamps] == ["asker", "dispatcher"]
    assert [s[7] for s in stamps] == [1, 2]
    assert stamps[1][3] == asker.peer.conn_id
    assert request["r"][0] == stamp("asker", 1), "an earlier stamp is passed on untouched"
    worker.answer(request)
    response, _ = asker.only(Kind.RESPONSE)
    stamps = [codec.decode(s) for s in response["r"]]
    assert [s[0] for s in stamps] == ["asker", "dispatcher", "worker", "dispatcher"]
    assert [s[7] for s in stamps] == [1, 2, 3, 4]
    assert stamps[3][3] == worker.peer.conn_id
    assert stamps[1][4] < stamps[3][4]


def test_bodies_are_forwarded_byte_for_byte_both_ways(star):
    """Request and answer bodies reach the other side as the exact bytes that were sent."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    # Non-canonical CBOR (indefinite-length map, an integer in a wider form than needed):
    # any decode and re-encode on the way would change these bytes.
    body = b"\xbf\x64blob\x59\x01\x00" + bytes(range(256)) + b"\x61n\x19\x00\x01\xff"
    asker.ask(1, "svc", body=body)
    request, received = worker.only(Kind.REQUEST)
    assert received == body
    answer = b"\xbf\x66result\x9f\x01\x02\xff\xff"
    worker.answer(request, body=answer)
    assert asker.only(Kind.RESPONSE)[1] == answer


# -- failure ------------------------------------------------------------------


def test_lost_worker_fails_its_requests_with_actor_lost_at_once(star):
    """When a worker's connection drops, each request it had is answered ACTOR_LOST at once."""
    doomed = star.actor("doomed", ["svc"])
    spare = star.actor("spare", ["svc"])
    first, second = star.actor("first"), star.actor("second")
    first.ask(11, "svc", tgt="doomed")
    first.ask(12, "svc", tgt="doomed")
    second.ask(21, "svc", tgt="doomed")
    assert len(star.dispatcher.inflight) == 3
    doomed.lose(ConnectionLost("reset"))
    answers = {(e["id"], e["st"]) for e in first.envelopes()}
    assert answers == {(11, Status.ACTOR_LOST), (12, Status.ACTOR_LOST)}
    assert [(e["id"], e["st"]) for e in second.envelopes()] == [(21, Status.ACTOR_LOST)]
    assert len(star.dispatcher.inflight) == 0
    assert spare.frames() == []
    assert star.dispatcher.stats["actor_lost"] == 3


def test_request_past_its_deadline_is_answered_timeout_and_late_answer_is_dead(star):
    """A request unanswered by its ttl gets TIMEOUT; the worker's late answer is a dead letter."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    star.clock.advance(0.25)
    asker.ask(3, "svc", ttl=1.0)
    request, _ = worker.only(Kind.REQUEST)
    assert request["ttl"] == 1.0
    star.clock.advance(0.9)
    assert asker.frames() == []
    star.clock.advance(0.2)
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (3, Status.TIMEOUT)
    assert len(star.dispatcher.inflight) == 0
    dead = star.dispatcher.stats["dead_letters"]
    worker.answer(request)
    assert star.dispatcher.stats["dead_letters"] == dead + 1
    assert asker.frames() == []


def test_an_asker_that_leaves_has_its_requests_cancelled_at_their_worker(star):
    """When the asker disconnects, its worker is sent CANCEL, the table empties at once,
    and the worker's later answer is a dead letter."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc")
    request, _ = worker.only(Kind.REQUEST)
    asker.lose()
    assert star.dispatcher.stats["discarded_asks"] == 1
    assert len(star.dispatcher.inflight) == 0
    cancel, _ = worker.only(Kind.CANCEL)
    assert cancel["id"] == request["id"]
    dead = star.dispatcher.stats["dead_letters"]
    worker.answer(request)
    assert star.dispatcher.stats["dead_letters"] == dead + 1


def forward(peer, request, rid, service):
    """``peer`` passes ``request`` (an envelope it received) on to ``service``."""
    route = request["r"] + [stamp(peer.peer.name, len(request["r"]) + 1)]
    peer.send({"k": Kind.REQUEST, "id": rid, "fwd": request["id"], "svc": service, "m": "run",
               "r": route})


def test_request_whose_route_reached_the_hop_limit_is_refused():
    """A forward whose route already holds hop_limit stamps is answered
    HOP_LIMIT_EXCEEDED at the original asker, not routed."""
    star = Star(hop_limit=4)
    first, second, third = (star.actor(n, [n]) for n in ("first", "second", "third"))
    asker = star.actor("asker")
    asker.ask(1, "first", r=[stamp("asker", 1)])
    request, _ = first.only(Kind.REQUEST)
    assert len(request["r"]) == 2
    forward(first, request, 10, "second")
    request, _ = second.only(Kind.REQUEST)
    assert len(request["r"]) == 4
    forward(second, request, 11, "third")
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (1, Status.HOP_LIMIT_EXCEEDED)
    assert third.frames() == []
    assert len(star.dispatcher.inflight) == 0


def test_idempotent_request_of_a_lost_worker_is_retried_on_another(star):
    """An idempotent request whose worker is lost goes to another worker, not back as an error."""
    workers = {name: star.actor(name, ["svc"]) for name in ("a", "b")}
    asker = star.actor("asker")
    body = codec.encode({"x": 1})
    asker.ask(5, "svc", body=body, idem=True, ttl=10.0)
    (first,) = [w for w in workers.values() if w.peer.in_flight]
    (other,) = [w for w in workers.values() if w is not first]
    first.frames()
    first.lose()
    assert asker.frames() == []
    retry, received = other.only(Kind.REQUEST)
    assert (retry["svc"], retry["m"], received) == ("svc", "run", body)
    assert star.dispatcher.stats["retried"] == 1
    other.answer(retry, body=codec.encode({"ok": True}))
    envelope, answer = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"], codec.decode(answer)) == (5, 200, {"ok": True})
    assert len(star.dispatcher.inflight) == 0


def test_idempotent_request_is_retried_only_once(star):
    """An idempotent request whose retry worker is lost too fails with ACTOR_LOST."""
    workers = [star.actor(name, ["svc"]) for name in ("a", "b", "c")]
    asker = star.actor("asker")
    asker.ask(5, "svc", idem=True)
    for _ in range(2):
        (holder,) = [w for w in workers if w.peer.in_flight]
        workers.remove(holder)
        holder.lose()
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (5, Status.ACTOR_LOST)
    assert workers[0].frames() == []
    assert star.dispatcher.stats["retried"] == 1


def test_request_that_is_not_idempotent_is_not_retried(star):
    """A request without idem whose worker is lost fails even though another worker is free."""
    workers = [star.actor(name, ["svc"]) for name in ("a", "b")]
    asker = star.actor("asker")
    asker.ask(5, "svc")
    (holder,) = [w for w in workers if w.peer.in_flight]
    (spare,) = [w for w in workers if w is not holder]
    holder.lose()
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.ACTOR_LOST
    assert spare.frames() == []


def test_idempotent_request_to_all_is_not_retried_on_an_actor_already_asked(star):
    """A lost worker's share of an idempotent ``all`` request is not sent to another member."""
    a, b = star.actor("a", ["svc"]), star.actor("b", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", tgt="all", idem=True)
    request_b, _ = b.only(Kind.REQUEST)
    a.lose()
    assert b.frames() == []
    b.answer(request_b, body=codec.encode({"n": "b"}))
    _, body = asker.only(Kind.RESPONSE)
    assert codec.decode(body)["a"]["status"] == Status.ACTOR_LOST


def test_idempotent_request_to_a_named_actor_is_not_retried_elsewhere(star):
    """An idempotent request naming an actor that is lost fails rather than reach another actor."""
    named, other = star.actor("named", ["svc"]), star.actor("other", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", tgt="named", idem=True)
    named.lose()
    assert other.frames() == []
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.ACTOR_LOST


# -- hostile input --------------------------------------------------------------

_GARBAGE = {
    "not-cbor": b"\xff\xfe\xfd",
    "not-a-map": codec.encode([1, 2, 3]),
    "unknown-kind": codec.encode({"k": 99}),
    "unknown-key": codec.encode({"k": Kind.KEEPALIVE, "zz": 1}),
    "wrong-type": codec.encode({"k": Kind.REQUEST, "id": "1", "svc": "s", "m": "m"}),
    "missing-key": codec.encode({"k": Kind.SUBSCRIBE}),
    "regex-tag": b"\xa1\x61k\xd8\x23\x61x",
    "trailing": codec.encode({"k": Kind.KEEPALIVE}) + b"\x00",
}


_BAD_REQUESTS = {
    "service-not-text": {"k": Kind.REQUEST, "id": 7, "svc": 1, "m": "m"},
    "method-not-text": {"k": Kind.REQUEST, "id": 7, "svc": "svc", "m": 2},
    "missing-method": {"k": Kind.REQUEST, "id": 7, "svc": "svc"},
    "unknown-key": {"k": Kind.REQUEST, "id": 7, "svc": "svc", "m": "m", "zz": 1},
}


@pytest.mark.parametrize("envelope", _BAD_REQUESTS.values(), ids=_BAD_REQUESTS.keys())
def test_a_malformed_request_fails_alone_and_its_sender_stays_connected(star, envelope):
    """A request whose id can be read but whose fields are wrong is answered
    MALFORMED_ENVELOPE under that id; the sender's other requests go on."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", tgt="worker")
    request, _ = worker.only(Kind.REQUEST)
    asker.send(envelope)
    failed, _ = asker.only(Kind.RESPONSE)
    assert (failed["id"], failed["st"]) == (7, Status.MALFORMED_ENVELOPE)
    assert failed["err"][1].startswith("malformed envelope: ")
    assert not asker.transport.disconnecting
    worker.answer(request)
    answer, _ = asker.only(Kind.RESPONSE)
    assert (answer["id"], answer["st"]) == (1, Status.SUCCESS)
    assert star.dispatcher.stats["malformed"] == 1


def test_a_malformed_tell_is_reported_as_a_failed_tell(star):
    """A tell with a method that is not text gets an ERROR (no id), not a hang-up."""
    asker = star.actor("asker")
    asker.send({"k": Kind.REQUEST, "id": 0, "nr": True, "svc": "svc", "m": 5})
    error, _ = asker.only(Kind.ERROR)
    assert (error["id"], error["st"]) == (0, Status.MALFORMED_ENVELOPE)
    assert not asker.transport.disconnecting


@pytest.mark.parametrize("envelope", _GARBAGE.values(), ids=_GARBAGE.keys())
def test_garbage_envelope_closes_its_sender_and_others_are_still_served(star, envelope):
    """A malformed envelope gets MALFORMED_ENVELOPE and a close; other peers are unaffected."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    hostile = star.actor("hostile", ["svc"])
    later = encode_frame({"k": Kind.REQUEST, "id": 2, "svc": "svc", "m": "m", "tgt": "worker"})
    hostile.send_raw(b"".join(frame_parts(envelope, b"\xa0")) + later)
    assert_closed_with(hostile, Status.MALFORMED_ENVELOPE)
    assert worker.frames() == []
    assert star.dispatcher.stats["malformed"] == 1
    asker.ask(1, "svc", tgt="worker")
    request, _ = worker.only(Kind.REQUEST)
    worker.answer(request)
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.SUCCESS


def test_frame_whose_lengths_disagree_is_refused_and_closed(star):
    """A frame whose envelope length exceeds its frame length gets MALFORMED_ENVELOPE."""
    peer = star.actor("peer")
    peer.send_raw(_HEADER.pack(8, 100) + b"\x00" * 4)
    assert_closed_with(peer, Status.MALFORMED_ENVELOPE)


def test_frame_announcing_more_than_max_frame_is_refused_and_closed():
    """A frame header announcing more than max_frame gets TOO_LARGE before its body arrives."""
    star = Star(max_frame_bytes=1024)
    peer = star.actor("peer", ["svc"])
    peer.send_raw(struct.pack(">I", 1025) + b"\x00" * 100)
    assert_closed_with(peer, Status.TOO_LARGE)
    assert star.dispatcher.stats["too_large"] == 1
    peer.send({"k": Kind.KEEPALIVE})
    assert peer.frames() == []


def test_a_frame_of_exactly_the_announced_limit_is_accepted():
    """READY announces the limit less the dispatcher's headroom; a frame of exactly
    that many bytes is routed like any other."""
    star = Star(max_frame_bytes=1024)
    worker = star.actor("worker", ["svc"])
    asker = star.connect()
    limit = asker.register("asker")["mf"]
    assert limit == 1024 - 128
    envelope = codec.encode({"k": Kind.REQUEST, "id": 1, "svc": "svc", "m": "m"})
    body = codec.encode(b"x" * (limit - 4 - len(envelope) - 3))
    assert 4 + len(envelope) + len(body) == limit
    asker.send_raw(b"".join(frame_parts(envelope, body)))
    assert worker.only(Kind.REQUEST)[1] == body
    assert not asker.transport.disconnecting


def test_a_frame_over_the_announced_limit_fails_that_message_alone():
    """A frame under the frame limit but over the announced one (it would outgrow the
    limit on its way) fails TOO_LARGE at its sender, which stays connected; an answer
    that size fails its request the same way and the worker stays connected."""
    star = Star(max_frame_bytes=1024)
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    envelope = codec.encode({"k": Kind.REQUEST, "id": 1, "svc": "svc", "m": "m"})
    body = codec.encode(b"x" * (1000 - 4 - len(envelope) - 3))
    asker.send_raw(b"".join(frame_parts(envelope, body)))
    failed, _ = asker.only(Kind.RESPONSE)
    assert (failed["id"], failed["st"]) == (1, Status.TOO_LARGE)
    assert failed["err"][1] == "a frame of 1000 bytes is over the limit of 896 bytes"
    assert worker.frames() == [] and not asker.transport.disconnecting
    asker.ask(2, "svc")
    request, _ = worker.only(Kind.REQUEST)
    worker.answer(request, body=codec.encode(b"y" * 900))
    failed, _ = asker.only(Kind.RESPONSE)
    assert (failed["id"], failed["st"]) == (2, Status.TOO_LARGE)
    assert not worker.transport.disconnecting
    assert len(star.dispatcher.inflight) == 0


def test_request_with_nan_ttl_is_refused_as_malformed(star):
    """A request whose ttl is NaN is answered MALFORMED_ENVELOPE and leaves nothing in flight."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", ttl=float("nan"))
    assert asker.only()[0]["st"] == Status.MALFORMED_ENVELOPE
    assert len(star.dispatcher.inflight) == 0
    assert worker.peer.in_flight == 0


# -- keepalive --------------------------------------------------------------------


def test_silent_peer_is_aborted_once_the_holdtime_has_passed():
    """With interval 1 and multiplier 3, a peer silent for more than 3 s is aborted."""
    star = Star(keepalive_interval=1, keepalive_multiplier=3)
    star.dispatcher.start()
    silent = star.actor("silent")
    chatty = star.actor("chatty")
    for _ in range(3):
        star.clock.advance(1)
        chatty.send({"k": Kind.KEEPALIVE})
    assert not silent.transport.disconnected
    star.clock.advance(1)
    chatty.send({"k": Kind.KEEPALIVE})
    assert silent.transport.disconnected
    assert not chatty.transport.disconnecting
    assert star.dispatcher.stats["keepalive_expired"] == 1
    chatty.frames()
    star.clock.advance(1)
    assert [e["k"] for e in chatty.envelopes()] == [Kind.KEEPALIVE]
    star.dispatcher.stop()


def test_keepalives_go_to_idle_links_only():
    """A sweep sends KEEPALIVE to a peer nothing was written to lately, and not to a busy one."""
    star = Star(keepalive_interval=1, keepalive_multiplier=3)
    star.dispatcher.start()
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    star.clock.advance(0.5)
    asker.ask(1, "svc")
    assert worker.only(Kind.REQUEST)
    star.clock.advance(0.5)
    assert worker.frames() == []
    assert [e["k"] for e in asker.envelopes()] == [Kind.KEEPALIVE]
    star.clock.advance(1)
    assert [e["k"] for e in worker.envelopes()] == [Kind.KEEPALIVE]
    assert [e["k"] for e in asker.envelopes()] == [Kind.KEEPALIVE]
    assert star.dispatcher.stats["keepalive_expired"] == 0
    star.dispatcher.stop()


# -- flow control -----------------------------------------------------------------


def test_congested_worker_pauses_its_senders_until_it_drains(star):
    """Writing to a paused worker pauses the sender's transport; resuming the worker resumes it."""
    worker = star.actor("worker", ["svc"])
    asker, bystander = star.actor("asker"), star.actor("bystander")
    assert worker.transport.producer is worker.peer.outbound
    worker.peer.outbound.pauseProducing()
    asker.ask(1, "svc")
    assert worker.only(Kind.REQUEST)
    assert asker.transport.producerState == "paused"
    assert bystander.transport.producerState == "producing"
    assert star.dispatcher.stats["senders_paused"] == 1
    worker.peer.outbound.resumeProducing()
    assert asker.transport.producerState == "producing"


def test_worker_lost_while_congested_resumes_its_senders(star):
    """A congested worker that disconnects releases the senders it had paused."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    worker.peer.outbound.pauseProducing()
    asker.ask(1, "svc")
    assert asker.transport.producerState == "paused"
    worker.lose()
    assert asker.transport.producerState == "producing"


def test_worker_past_its_outbound_limit_is_answered_busy():
    """Once a congested worker's backlog passes outbound_limit, new requests for it get BUSY."""
    star = Star(outbound_limit_bytes=200)
    worker = star.actor("worker", ["svc"])
    asker, other = star.actor("asker"), star.actor("other")
    worker.peer.outbound.pauseProducing()
    asker.ask(1, "svc", body=codec.encode(b"x" * 50))
    assert worker.only(Kind.REQUEST)
    assert 100 < worker.peer.outbound.backlog <= 200
    assert not worker.peer.outbound.over_limit
    asker.ask(2, "svc", body=codec.encode(b"x" * 50))
    assert worker.only(Kind.REQUEST)
    assert worker.peer.outbound.over_limit
    other.ask(3, "svc")
    other.ask(4, "svc", tgt="worker")
    assert [(e["id"], e["st"]) for e in other.envelopes()] == [(3, Status.BUSY), (4, Status.BUSY)]
    assert worker.frames() == []
    worker.peer.outbound.resumeProducing()
    other.ask(5, "svc")
    assert worker.only(Kind.REQUEST)


def test_request_to_all_does_not_buffer_for_a_worker_past_its_outbound_limit():
    """Target ``all`` does not queue more bytes for a worker past its outbound limit."""
    star = Star(outbound_limit_bytes=10)
    stuck, fine = star.actor("stuck", ["svc"]), star.actor("fine", ["svc"])
    asker = star.actor("asker")
    stuck.peer.outbound.pauseProducing()
    asker.ask(1, "svc", tgt="stuck", body=codec.encode(b"x" * 50))
    assert stuck.peer.outbound.over_limit
    stuck.frames()
    asker.ask(2, "svc", tgt="all")
    assert stuck.frames() == []
    request, _ = fine.only(Kind.REQUEST)
    fine.answer(request)
    _, body = asker.only(Kind.RESPONSE)
    assert codec.decode(body)["stuck"]["status"] == Status.BUSY


# -- drain on shutdown -------------------------------------------------------------


def test_drain_refuses_new_work_and_waits_for_work_in_flight():
    """While draining, new requests get SHUTTING_DOWN; the in-flight one finishes normally."""
    star = Star()
    worker, asker = star.actor("worker", ["svc"]), star.actor("asker")
    asker.ask(1, "svc")
    request, _ = worker.only(Kind.REQUEST)
    drained = star.dispatcher.drain(5.0)
    asker.ask(2, "svc")
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.SHUTTING_DOWN
    assert worker.frames() == []
    assert not drained.called
    worker.answer(request)
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (1, Status.SUCCESS)
    star.clock.advance(0)
    assert drained.result == 0


def test_the_drain_ends_only_after_the_last_answer_is_written():
    """Whoever waits for the drain closes connections next, so when it fires the
    last answer must already be on its way to the asker, not still waiting to be
    sent (the request leaves the table before its answer is written)."""
    star = Star()
    worker, asker = star.actor("worker", ["svc"]), star.actor("asker")
    asker.ask(1, "svc")
    request, _ = worker.only(Kind.REQUEST)
    answered_when_drained = []
    star.dispatcher.drain(5.0).addCallback(
        lambda _: answered_when_drained.append([e["id"] for e in asker.envelopes()]))
    worker.answer(request)
    star.clock.advance(0)
    assert answered_when_drained == [[1]]


def test_drain_fails_what_is_left_at_its_deadline():
    """Requests still in flight when the drain deadline passes fail with SHUTTING_DOWN,
    and their worker is told to stop working on them."""
    star = Star()
    worker, asker = star.actor("worker", ["svc"]), star.actor("asker")
    asker.ask(1, "svc", ttl=60)
    asker.ask(2, "svc", ttl=60)
    sent = sorted(envelope["id"] for envelope in worker.envelopes())
    drained = star.dispatcher.drain(2.0)
    star.clock.advance(1.9)
    assert asker.frames() == [] and not drained.called
    star.clock.advance(0.2)
    answers = asker.envelopes()
    assert sorted((e["id"], e["st"]) for e in answers) == [
        (1, Status.SHUTTING_DOWN), (2, Status.SHUTTING_DOWN)]
    assert drained.result == 2
    assert len(star.dispatcher.inflight) == 0
    cancels = worker.envelopes()
    assert [e["k"] for e in cancels] == [Kind.CANCEL] * 2
    assert sorted(e["id"] for e in cancels) == sent


def test_a_dead_letter_is_logged_with_the_names_on_its_route(star):
    """A late answer is logged as a dead letter naming its kind, id and route hops."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(3, "svc", ttl=1.0, r=[stamp("asker", 1)])
    request, _ = worker.only(Kind.REQUEST)
    star.clock.advance(1.1)
    with capturedLogs() as events:
        worker.answer(request)
    (event,) = [e for e in events if "dead letter" in e.get("log_format", "")]
    assert formatEvent(event) == ("dead letter from worker: answer to a request that is no "
                                  "longer in flight (RESPONSE 1, route asker > dispatcher > "
                                  "worker)")


@pytest.mark.parametrize("bad", [{"err": ["x"]}, {"err": [1, "m"]}, {"err": ["a", "b", "c"]},
                                 {"st": 99}, {"st": 1000}],
                         ids=["one-item", "type-not-text", "three-items", "status-low",
                              "status-high"])
def test_a_malformed_answer_fails_its_request_exactly_once(star, bad):
    """A worker's malformed answer fails that request with MALFORMED_ENVELOPE, once,
    and the worker stays connected."""
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(4, "svc")
    request, _ = worker.only(Kind.REQUEST)
    worker.send({"k": Kind.RESPONSE, "id": request["id"], "st": 500, **bad})
    envelope, _ = asker.only(Kind.RESPONSE)
    assert (envelope["id"], envelope["st"]) == (4, Status.MALFORMED_ENVELOPE)
    assert envelope["err"][1].startswith("worker answered svc.run with a malformed envelope: ")
    assert not worker.transport.disconnecting
    worker.answer(request)
    assert asker.frames() == []
    assert len(star.dispatcher.inflight) == 0


def test_a_malformed_answer_to_all_is_one_error_in_the_gathered_answer(star):
    """With target ``all``, a malformed answer becomes that member's error entry."""
    good, bad = star.actor("good", ["svc"]), star.actor("bad", ["svc"])
    asker = star.actor("asker")
    asker.ask(9, "svc", tgt="all")
    good.answer(good.only(Kind.REQUEST)[0], body=codec.encode({"n": 1}))
    request, _ = bad.only(Kind.REQUEST)
    bad.send({"k": Kind.RESPONSE, "id": request["id"], "st": 500, "err": ["x"]})
    envelope, body = asker.only(Kind.RESPONSE)
    answer = codec.decode(body)
    assert answer["good"] == {"status": 200, "result": {"n": 1}}
    assert answer["bad"]["status"] == Status.MALFORMED_ENVELOPE
    assert len(star.dispatcher.inflight) == 0


def test_a_gathered_member_forwarded_to_all_is_answered_once():
    """A member of a gathered ask that forwards to ``all`` of two actors counts once: the
    asker gets one combined answer, not one per answering actor."""
    star = Star()
    front = star.actor("front", ["front"])
    backs = [star.actor(name, ["back"]) for name in ("back-1", "back-2")]
    asker = star.actor("asker")
    asker.ask(1, "front", tgt=["front"])
    request, _ = front.only(Kind.REQUEST)
    front.send({"k": Kind.REQUEST, "id": 7, "fwd": request["id"], "svc": "back", "m": "run",
                "tgt": "all", "r": request["r"] + [stamp("front", len(request["r"]) + 1)]})
    for back in backs:
        back.answer(back.only(Kind.REQUEST)[0], body=codec.encode({"from": back.peer.name}))
    envelope, body = asker.only(Kind.RESPONSE)
    assert envelope["id"] == 1 and list(codec.decode(body)) == ["front"]
    assert asker.frames() == []
    assert len(star.dispatcher.inflight) == 0
