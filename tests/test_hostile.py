"""A hostile or broken peer is held to its own harm: deterministic tests on a Clock."""

import gc
import struct
import tracemalloc

import pytest
from test_dispatcher import Star, stamp
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from actornet.actors.keepalive import Keepalive
from actornet.actors.link import ActorLink
from actornet.client import Client
from actornet.dispatcher.identity import Identity
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.databag import DataBag
from actornet.protocols.framing import encode_frame

MiB = 1024 * 1024


def test_a_connection_that_ends_mid_frame_frees_its_buffer_at_once():
    """Ten registered peers each send 900 KB of a 1 MB frame and vanish: the memory
    comes back without waiting for a garbage collection."""
    star = Star()
    peers = [star.actor(f"p{i}") for i in range(10)]
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for peer in peers:
            peer.send_raw(struct.pack(">II", MiB, 10) + b"x" * (900 * 1024))
        assert tracemalloc.get_traced_memory()[0] - before > 8 * MiB
        for peer in peers:
            peer.lose()
        assert tracemalloc.get_traced_memory()[0] - before < MiB
    finally:
        tracemalloc.stop()
        gc.enable()


def test_before_register_only_a_small_frame_is_read():
    """An unregistered peer announcing a 100 KB frame is refused TOO_LARGE at once."""
    star = Star()
    stranger = star.connect()
    stranger.send_raw(struct.pack(">II", 100_000, 10))
    envelope, _ = stranger.only(Kind.REFUSED)
    assert envelope["st"] == Status.TOO_LARGE
    assert envelope["err"][1] == ("frame of 100000 bytes exceeds the limit of 4096 bytes "
                                  "before REGISTER")
    assert stranger.transport.disconnecting


def test_a_peer_that_does_not_register_in_time_is_closed():
    """A connection with no REGISTER within register_timeout is refused UNAUTHORIZED."""
    star = Star(register_timeout=2.0)
    idle = star.connect()
    star.clock.advance(1.9)
    assert not idle.transport.disconnecting
    star.clock.advance(0.2)
    assert idle.only(Kind.REFUSED)[0]["err"][1] == "no REGISTER within 2 s"
    assert idle.transport.disconnecting
    registered = star.actor("on-time")
    star.clock.advance(5)
    assert not registered.transport.disconnecting
    assert star.dispatcher.clock.getDelayedCalls() == []


def test_a_large_envelope_is_refused_before_it_is_decoded(monkeypatch):
    """An envelope over max_envelope_bytes is refused TOO_LARGE without decoding it."""
    star = Star(max_envelope_bytes=1024)
    hostile = star.actor("hostile")
    decoded = []
    monkeypatch.setattr(codec, "decode", lambda data: decoded.append(len(data)))
    envelope = b"\x9a" + struct.pack(">I", 2000) + b"\xa0" * 2000
    hostile.send_raw(struct.pack(">II", 4 + len(envelope), len(envelope)) + envelope)
    monkeypatch.undo()
    assert decoded == []
    assert hostile.only(Kind.REFUSED)[0]["err"][1] == (
        "an envelope of 2005 bytes exceeds the limit of 1024 bytes")


def test_a_target_list_is_deduplicated_capped_and_never_forwarded():
    """99 copies of one name reach that actor once, without the list; a list longer
    than max_targets is refused (and one past the envelope cap never gets decoded)."""
    star = Star(max_targets=100)
    worker = star.actor("math-1", ["math"])
    asker = star.actor("asker")
    asker.ask(1, "math", tgt=["math-1"] * 99)
    request, _ = worker.only(Kind.REQUEST)
    assert "tgt" not in request
    worker.answer(request)
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.SUCCESS
    asker.ask(2, "math", tgt=["math-1"] * 1000)
    refused, _ = asker.only(Kind.RESPONSE)
    assert (refused["st"], refused["err"][1]) == (
        Status.MALFORMED_ENVELOPE, "a target list names at most 100 actors, not 1000")
    assert worker.frames() == []


def test_requests_in_flight_per_asker_are_capped():
    """Past max_in_flight_per_asker, an asker's new requests get BUSY; others are served."""
    star = Star(max_in_flight_per_asker=3)
    worker = star.actor("worker", ["svc"])
    greedy, modest = star.actor("greedy"), star.actor("modest")
    for rid in range(1, 5):
        greedy.ask(rid, "svc")
    assert len(worker.frames()) == 3
    busy, _ = greedy.only(Kind.RESPONSE)
    assert (busy["id"], busy["st"]) == (4, Status.BUSY)
    modest.ask(1, "svc")
    assert len(worker.frames()) == 1


def test_large_idempotent_bodies_are_not_kept_for_a_retry():
    """An idempotent request bigger than max_retry_body_bytes is not retried (and not kept)."""
    star = Star(max_retry_body_bytes=100)
    first, second = star.actor("first", ["svc"]), star.actor("second", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", body=codec.encode({"blob": b"x" * 200}), idem=True)
    (holder,) = [w for w in (first, second) if w.peer.in_flight]
    assert star.dispatcher.inflight.get(next(iter(holder.peer.working))).body is None
    holder.lose()
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.ACTOR_LOST


def test_every_part_of_a_large_frame_is_counted_out():
    """A body passed on in pieces is counted whole in the bytes sent to its receiver."""
    star = Star()
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    before = worker.peer.bytes_out
    body = codec.encode({"blob": b"x" * 300_000})
    frame = encode_frame({"k": Kind.REQUEST, "id": 1, "svc": "svc", "m": "m"}, body)
    for offset in range(0, len(frame), 65536):
        asker.send_raw(frame[offset:offset + 65536])
    assert worker.peer.bytes_out - before > len(body)


def test_a_slow_upload_is_a_sign_of_life():
    """A frame streamed for longer than the holdtime keeps its sender alive; a frozen
    peer is dropped within holdtime + 10 %."""
    star = Star(keepalive_interval=1, keepalive_multiplier=3)
    star.dispatcher.start()
    uploader, frozen = star.actor("uploader"), star.actor("frozen")
    uploader.send_raw(struct.pack(">II", 200_000, 10))
    dropped_at = None
    for tick in range(1, 65):
        star.clock.advance(0.1)
        uploader.send_raw(b"x" * 1000)
        if dropped_at is None and frozen.transport.disconnected:
            dropped_at = tick / 10
    assert not uploader.transport.disconnected
    assert 3.0 <= dropped_at <= 3.3
    star.dispatcher.stop()


def test_only_the_dispatcher_publishes_on_its_own_topics():
    """A peer publishing on actornet.actors gets an UNAUTHORIZED error; nobody hears it."""
    star = Star()
    watcher = star.actor("watcher")
    watcher.send({"k": Kind.SUBSCRIBE, "top": "actornet.actors"})
    forger = star.actor("forger")
    watcher.frames()
    forger.send({"k": Kind.EVENT, "top": "actornet.actors", "r": []},
                codec.encode({"event": "died", "name": "math-1"}))
    refused, _ = forger.only(Kind.ERROR)
    assert refused["st"] == Status.UNAUTHORIZED
    assert watcher.frames() == []
    assert star.dispatcher.stats["forbidden"] == 1


def test_identities_are_asked_before_a_request_or_an_event_goes_anywhere():
    """An identity may ask and publish only what its patterns allow; a refusal is
    UNAUTHORIZED naming what was refused, and counted."""
    alice = Identity("alice", register=("*",), serve=(), ask=("math",), publish=("news",),
                     token="a-token")
    star = Star(identities=(alice,))
    client = star.connect()
    client.register("alice-client", tok="a-token")
    client.ask(1, "billing")
    refused, _ = client.only(Kind.RESPONSE)
    assert (refused["st"], refused["err"][1]) == (
        Status.UNAUTHORIZED, "identity 'alice' may not ask the service 'billing'")
    client.send({"k": Kind.EVENT, "top": "gossip", "r": []})
    refused, _ = client.only(Kind.ERROR)
    assert refused["err"][1] == "identity 'alice' may not publish on the topic 'gossip'"
    assert star.dispatcher.stats["forbidden"] == 2


def test_a_forged_route_history_is_dropped_and_a_forged_answer_route_fails():
    """A new request keeps only its sender's own stamp (the claimed "provider" hop is
    dropped); an answer whose route is not the one sent plus the worker's stamp fails
    MALFORMED_ENVELOPE."""
    star = Star()
    worker = star.actor("intake", ["svc"])
    asker = star.actor("asker")
    asker.ask(1, "svc", r=[stamp("provider", 1), stamp("asker", 2)])
    request, _ = worker.only(Kind.REQUEST)
    names = [codec.decode(item)[0] for item in request["r"]]
    assert names == ["asker", "dispatcher"]
    forged = request["r"] + [stamp("provider", 2)]
    worker.send({"k": Kind.RESPONSE, "id": request["id"], "st": 200, "r": forged})
    failed, _ = asker.only(Kind.RESPONSE)
    assert (failed["st"], failed["err"][1]) == (
        Status.MALFORMED_ENVELOPE,
        "intake sent a route that is not the one it was given plus its own stamp")


@pytest.mark.parametrize("failures, refused", [(9, False), (10, True)])
def test_failed_registrations_are_throttled_per_address(failures, refused):
    """After ten wrong tokens from one address, its new connections are closed at once,
    counted, until the penalty has passed."""
    star = Star(token="right")
    for _ in range(failures):
        guesser = star.connect()
        guesser.send({"k": Kind.REGISTER, "name": "g", "tok": "wrong"})
    again = star.connect()
    assert again.transport.disconnected == refused
    assert star.dispatcher.stats["auth_throttled"] == int(refused)
    star.clock.advance(11)
    assert not star.connect().transport.disconnected


@pytest.mark.parametrize("junk", [
    {}, {"event": "died"}, {"event": "died", "name": 5}, {"event": "exploded", "name": "x"},
    {"event": "died", "name": "x", "services": "math"},
])
def test_the_keepalive_actor_survives_junk_lifecycle_events(junk):
    """A malformed event on the death watch's topic is ignored (and logged), never raised."""
    keepalive = Keepalive("keepalive", clock=Clock())
    keepalive._lifecycle(DataBag(junk))
    assert keepalive.departed == {}
    keepalive._lifecycle(DataBag({"event": "died", "name": "math-1", "services": ["math"]}))
    assert list(keepalive.departed) == ["math-1"]


def test_an_actor_stops_reading_while_its_own_answers_pile_up():
    """When the actor's transport buffer is full, its link stops reading requests, and
    reads again once the buffer drained; meanwhile it is not taken for dead."""
    transport = StringTransport()
    link = ActorLink(Client("a", clock=Clock()).session, Clock())
    link.makeConnection(transport)
    link.dataReceived(encode_frame(messages.ready(1, "a", 1.0, 1024 * 1024)))
    assert transport.producer is not None and transport.streaming
    transport.producer.pauseProducing()
    assert transport.producerState == "paused" and link.congested
    transport.producer.resumeProducing()
    assert transport.producerState == "producing" and not link.congested
