"""Fuzzing the dispatcher's frame handling on a Clock, with no sockets.

Peers are the dispatcher's own protocol on a ``StringTransport`` (as in
tests/test_dispatcher.py).  Whatever a peer sends, the dispatcher must never
let an exception out of ``dataReceived`` or a timer, must write only
well-formed frames, and must keep its promise to every asker: each accepted
ask is answered exactly once (by its actor, a failure, or a timeout), and
the in-flight table is empty once every deadline has passed.

The bugs the fuzzers found are pinned by the tests at the end of this module.
"""

from fuzz_budget import (
    examples,
    for_budget,
    fuzz_timeout,
    memory_peak_below,
    no_logged_failures,
)
from fuzz_inputs import (
    DrawPicker,
    RandomPicker,
    body,
    mutate_bytes,
    mutate_envelope,
    mutated_frame,
    random_cbor_frame,
    valid_envelope,
    valid_response,
)
from hypothesis import currently_in_test_context, given, note
from hypothesis import strategies as st
from test_dispatcher import FakePeer, Star, stamp

from actornet.protocols import codec, envelope, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame

pytestmark = fuzz_timeout

MAX_TIMEOUT = 60.0


class Conn:
    """One peer's connection, closed the way Twisted closes it, its output checked."""

    def __init__(self, star, name=None, services=()):
        self.name = name or "unregistered"
        self.fake = FakePeer(star.dispatcher)
        self.closed = False
        self.answers = {}
        self.requests = []
        if name is not None:
            self.fake.register(name, services)

    def feed(self, data):
        """Hand ``data`` to the dispatcher as one read; nothing may raise."""
        if currently_in_test_context():
            note(f"{self.name} sends {data!r}")
        if not self.closed:
            self.fake.send_raw(data)
        self.collect()

    def collect(self):
        """Check and sort what the dispatcher wrote; close the connection if it hung up."""
        for sent, _ in self.fake.frames():
            kind = envelope.check(sent)
            if kind is Kind.RESPONSE:
                self.answers.setdefault(sent["id"], []).append(sent)
            elif kind is Kind.REQUEST and sent["id"]:
                self.requests.append(sent)
        if self.fake.transport.disconnecting and not self.closed:
            self.closed = True
            self.fake.lose()

    def take_request(self, pick):
        """One of the requests this peer was given and has not answered, or None."""
        if not self.requests:
            return None
        return self.requests.pop(pick.integer(0, len(self.requests) - 1))


class Network:
    """A dispatcher on a Clock with two workers of ``svc``, an asker and a stranger."""

    def __init__(self):
        self.star = Star(max_timeout=MAX_TIMEOUT, request_timeout=5.0)
        self.honest = Conn(self.star, "w1", ["svc"])
        self.fuzzer = Conn(self.star, "w2", ["svc"])
        self.asker = Conn(self.star, "asker")
        self.stranger = Conn(self.star, "stranger")
        self.conns = [self.honest, self.fuzzer, self.asker, self.stranger]
        self.asked = []

    def collect(self):
        for conn in self.conns:
            conn.collect()

    def ask(self, pick):
        rid = len(self.asked) + 1
        self.asked.append(rid)
        target = pick.choice(("any", "any", "all", "w1", "w2", ["w1", "w2"], ["w2"]))
        request = messages.request(rid, pick.choice(("svc", "svc", "nosuch", "mmi")),
                                   pick.choice(("run", "show_dispatcher")), [],
                                   target=target, ttl=pick.choice((None, 0.0, 1.0, 30.0)),
                                   idempotent=pick.choice((True, False)))
        self.asker.feed(encode_frame(request, body(pick)))

    def honest_answer(self, pick):
        request = self.honest.take_request(pick)
        if request is not None:
            self.honest.feed(encode_frame(answer_to(request), b""))

    def fuzzed_answer(self, pick):
        request = self.fuzzer.take_request(pick)
        rid = request["id"] if request is not None else pick.integer(0, 5)
        route = (request or {}).get("r", []) + [stamp("w2", 1)]
        sent = valid_response(pick, rid, route)
        if pick.integer(0, 2):
            sent = mutate_envelope(pick, sent)
        frame = encode_frame(sent, body(pick))
        if not pick.integer(0, 3):
            frame = mutate_bytes(pick, frame)
        self.fuzzer.feed(frame)

    def fuzzed_forward(self, pick):
        request = self.fuzzer.take_request(pick)
        rid = request["id"] if request is not None else pick.integer(0, 5)
        forward = messages.request(pick.integer(1, 9), pick.choice(("svc", "nosuch")), "run",
                                   (request or {}).get("r", []), forwarding=rid,
                                   target=pick.choice(("any", "all", "w1")))
        frame = mutated_frame(pick, forward) if pick.integer(0, 1) else encode_frame(forward)
        self.fuzzer.feed(frame)

    def stranger_sends(self, pick):
        how = pick.integer(0, 2)
        if how == 0:
            self.stranger.feed(random_cbor_frame(pick))
        elif how == 1:
            self.stranger.feed(pick.binary(24))
        else:
            sent = valid_envelope(pick, ids=(1, 2, 3, len(self.asked)))
            frame = mutated_frame(pick, sent, body(pick))
            self.stranger.feed(frame)

    def settle(self):
        """Let the honest worker answer everything, then every deadline pass."""
        for _ in range(10):
            self.collect()
            while self.honest.requests:
                self.honest.feed(encode_frame(answer_to(self.honest.requests.pop()), b""))
            self.star.clock.advance(MAX_TIMEOUT + 1)
        self.collect()


def answer_to(request):
    """What a well-behaved actor answers to ``request``."""
    return messages.response(request["id"], request.get("r", []) + [stamp("w1", 1)])


STEPS = ("ask", "ask", "honest_answer", "fuzzed_answer", "fuzzed_answer", "fuzzed_forward",
         "stranger_sends", "advance")


@examples(1000)
@given(st.randoms(use_true_random=True))
def fuzz_a_network_of_peers(random):
    pick = RandomPicker(random)
    network = Network()
    for _ in range(pick.integer(1, 30)):
        step = pick.choice(STEPS)
        if step == "advance":
            network.star.clock.advance(pick.choice((0.0, 0.5, 2.0, 31.0)))
            network.collect()
        else:
            getattr(network, step)(pick)
    network.settle()
    dispatcher = network.star.dispatcher
    assert len(dispatcher.inflight) == 0
    if not network.asker.closed:
        answered = {rid: len(network.asker.answers.get(rid, [])) for rid in network.asked}
        assert answered == dict.fromkeys(network.asked, 1), "an ask was not answered once"
    for conn in network.conns:
        if not conn.closed:
            conn.fake.lose()
    assert not dispatcher.peers and not dispatcher.registry.by_name


@examples(200)
@given(st.booleans(), st.data())
def fuzz_bytes_from_one_peer(registered, data):
    pick = DrawPicker(data)
    star = Star(max_timeout=MAX_TIMEOUT)
    worker = Conn(star, "w1", ["svc"])
    peer = Conn(star, "p" if registered else None)
    stream = b""
    for _ in range(pick.integer(1, 4)):
        how = pick.integer(0, 2)
        if how == 0:
            stream += pick.binary(40)
        elif how == 1:
            stream += random_cbor_frame(pick)
        else:
            stream += mutated_frame(pick, valid_envelope(pick), body(pick))
    cuts = sorted({pick.integer(0, len(stream)) for _ in range(pick.integer(0, 4))})
    start = 0
    for cut in cuts + [len(stream)]:
        peer.feed(stream[start:cut])
        start = cut
    for request in worker.requests:
        worker.feed(encode_frame(answer_to(request)))
    star.clock.advance(MAX_TIMEOUT + 1)
    worker.collect()
    peer.collect()
    assert len(star.dispatcher.inflight) == 0


def test_any_bytes_from_a_peer_are_refused_or_handled_never_raised():
    """Random bytes, random CBOR and mutated frames from a fresh or registered peer,
    split into reads anywhere, raise nothing and leave nothing in flight."""
    with no_logged_failures(), memory_peak_below(32):
        for_budget(fuzz_bytes_from_one_peer)


def test_every_ask_is_answered_once_whatever_workers_and_strangers_send():
    """With a worker answering mutated RESPONSEs and forwards and a stranger sending
    anything, every ask of a well-behaved asker gets exactly one answer and the
    in-flight table empties once the deadlines pass."""
    with no_logged_failures(), memory_peak_below(32):
        for_budget(fuzz_a_network_of_peers)


# -- what the fuzzers found ----------------------------------------------------


def test_a_dead_letter_whose_route_has_a_time_too_large_for_a_float_is_counted_not_raised():
    """A RESPONSE to no request, its route holding a stamp timed 2**1100, is a dead
    letter (its log line once raised OverflowError out of ``dataReceived``)."""
    star = Star()
    worker = Conn(star, "w2", ["svc"])
    huge = codec.encode(["w2", "h", 1, 1, 1, 2**1100, 0.0, 1])
    worker.feed(encode_frame(messages.response(77, [huge])))
    assert star.dispatcher.stats["dead_letters"] == 1
    assert not worker.closed


def test_a_gathered_answer_whose_err_has_one_element_still_answers_the_ask_once():
    """An ``all`` ask answered with ``err: ["x"]`` gets one answer, the failure."""
    star = Star(max_timeout=MAX_TIMEOUT)
    worker, asker = Conn(star, "w2", ["svc"]), Conn(star, "asker")
    asker.feed(encode_frame(messages.request(1, "svc", "run", [], target="all")))
    worker.collect()
    request = worker.requests.pop()
    try:
        worker.feed(encode_frame(messages.response(request["id"], request["r"],
                                                   status=Status.FAILURE, error=["x"])))
    finally:
        star.clock.advance(MAX_TIMEOUT + 1)
        asker.collect()
        assert len(star.dispatcher.inflight) == 0
    assert len(asker.answers.get(1, [])) == 1


def test_a_plain_ask_forwarded_to_all_is_answered_once():
    """An ``any`` ask whose actor forwards it to ``all`` of two actors gets one answer."""
    star = Star(max_timeout=MAX_TIMEOUT)
    front = Conn(star, "front", ["front"])
    backs = [Conn(star, "back-1", ["back"]), Conn(star, "back-2", ["back"])]
    asker = Conn(star, "asker")
    asker.feed(encode_frame(messages.request(1, "front", "run", [])))
    front.collect()
    request = front.requests.pop()
    front.feed(encode_frame(messages.request(1, "back", "run", request["r"], target="all",
                                             forwarding=request["id"])))
    for back in backs:
        back.collect()
        back.feed(encode_frame(answer_to(back.requests.pop())))
    star.clock.advance(MAX_TIMEOUT + 1)
    asker.collect()
    assert len(star.dispatcher.inflight) == 0
    assert len(asker.answers.get(1, [])) == 1
