"""Deterministic tests of the federation's link protocol, without NATS.

Real dispatchers and their federations on one ``Clock``, their buses on a
:class:`~memorybus.Hub` that delivers in publish order and can drop, hold back
and cut; actors and clients are the dispatcher's own protocol on a
``StringTransport``, driven frame by frame (they say a keepalive at every
step of :meth:`Network.advance`, so the dispatchers' sweep keeps them).  Each
rule of the protocol has a test of its own; the last test runs three
dispatchers under seeded random faults and checks what must hold whatever
happens.
"""

import random
import struct

import pytest
from memorybus import Hub, MemoryBus
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent

from actornet.dispatcher.core import Dispatcher
from actornet.dispatcher.directory import MAX_ACTORS, hello
from actornet.dispatcher.federation import Federation
from actornet.dispatcher.links import HEADER, OPEN, RESET
from actornet.dispatcher.routes import hop_names
from actornet.dispatcher.settings import DispatcherSettings
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame
from actornet.protocols.stamp import stamp_bytes

NETWORK = "net"
INTERVAL = 1.0
HOLDTIME = 3 * INTERVAL
TIMEOUT = 10.0

_FRAME = struct.Struct(">II")


def link_subject(to, sender):
    return f"actornet.{NETWORK}.link.{to}.{sender}"


def on_link(to, sender):
    """Picks the messages of the link from ``sender`` to ``to``."""
    subject = link_subject(to, sender)
    return lambda message: message.subject == subject


def frames_on_link(to, sender):
    """Picks the messages of that link that carry frames (neither open nor reset)."""
    subject = link_subject(to, sender)
    return lambda message: (message.subject == subject
                            and HEADER.unpack_from(message.data)[3] not in (OPEN, RESET))


def is_open(to, sender):
    """Picks the opens of that link."""
    subject = link_subject(to, sender)
    return lambda message: (message.subject == subject
                            and HEADER.unpack_from(message.data)[3] == OPEN)


def is_reset(to, sender):
    """Picks the resets of that link."""
    subject = link_subject(to, sender)
    return lambda message: (message.subject == subject
                            and HEADER.unpack_from(message.data)[3] == RESET)


def crossed(hub, picks):
    """How many delivered messages ``picks`` chooses."""
    return sum(1 for message in hub.crossed if picks(message))


class Attached:
    """An actor or client registered at a dispatcher, driven by hand."""

    def __init__(self, dispatcher, name, services=()):
        self.name = name
        self.transport = StringTransport()
        self.protocol = dispatcher.factory().buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        self._stamps = 0
        self.send(messages.register(name, services))
        assert [envelope["k"] for envelope, _ in self.received()] == [Kind.READY]

    def send(self, envelope, body=b""):
        self.protocol.dataReceived(encode_frame(envelope, body))

    def stamp(self, hop):
        self._stamps += 1
        return stamp_bytes(self.name, "host", 1, 1, self._stamps, 0.0, 0.0, hop)

    def ask(self, rid, service, method="run", body=b""):
        self.send(messages.request(rid, service, method, [self.stamp(1)]), body)

    def answer(self, request, body=b""):
        route = request["r"] + [self.stamp(len(request["r"]) + 1)]
        self.send(messages.response(request["id"], route), body)

    def received(self):
        """Every frame but keepalives written to this peer since the last call:
        ``(envelope, body)``."""
        data = self.transport.value()
        self.transport.clear()
        frames = []
        offset = 0
        while offset < len(data):
            length, envelope_length = _FRAME.unpack_from(data, offset)
            body_start = offset + 8 + envelope_length
            envelope = codec.decode(data[offset + 8:body_start])
            if envelope["k"] != Kind.KEEPALIVE:
                frames.append((envelope, data[body_start:offset + 4 + length]))
            offset += 4 + length
        return frames


class Node:
    """A dispatcher federated over a :class:`MemoryBus` of ``hub``."""

    def __init__(self, hub, name, max_payload=1024 * 1024):
        self.dispatcher = Dispatcher(hub.clock, DispatcherSettings(
            name=name, keepalive_interval=INTERVAL, request_timeout=TIMEOUT))
        self.bus = MemoryBus(hub, max_payload)
        self.federation = Federation(self.dispatcher, self.bus, NETWORK)
        self.attached = []
        self.dispatcher.start()
        self.federation.start()

    @property
    def stats(self):
        return self.dispatcher.stats

    def attach(self, name, services=()):
        peer = Attached(self.dispatcher, name, services)
        self.attached.append(peer)
        return peer

    def link_to(self, name):
        """The transport of the link to dispatcher ``name`` now."""
        return self.federation.links[name].protocol.transport

    def crash(self):
        """Stop as a killed process does: no goodbye, nothing more on the bus."""
        self.federation.stop(say_bye=False)


class Network:
    """Dispatchers on one hub and one clock, started (they join the bus when the
    clock next runs)."""

    def __init__(self, *names, max_payload=1024 * 1024):
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.nodes = {name: Node(self.hub, name, max_payload) for name in names}

    def __getitem__(self, name):
        return self.nodes[name]

    def settle(self):
        """Run everything that is due now, messages and what they cause."""
        self.clock.advance(0)

    def advance(self, seconds, step=0.125):
        """Let ``seconds`` pass in small steps (exact in binary, so timers due on a
        whole second are not a rounding error early or late), each peer saying a
        keepalive at each."""
        for _ in range(round(seconds / step)):
            for node in self.nodes.values():
                for peer in node.attached:
                    peer.send(messages.keepalive())
            self.clock.advance(step)

    def restart(self, name):
        """Crash dispatcher ``name`` and start another of that name (a new boot)."""
        self.nodes[name].crash()
        self.nodes[name] = Node(self.hub, name)
        return self.nodes[name]


def outcomes(peer):
    """``(id, status, error message)`` of every answer ``peer`` got since the last look."""
    return [(envelope["id"], envelope["st"], envelope.get("err", [None, None])[1])
            for envelope, _ in peer.received()]


def assert_answered(network, client, service, worker):
    """An ask of ``client`` for ``service`` reaches ``worker`` alone, and its answer
    comes back, once."""
    network.settle()
    assert client.received() == [] and worker.received() == []
    client.ask(99, service, "run", b"ping")
    network.settle()
    [(request, body)] = worker.received()
    assert body == b"ping"
    worker.answer(request, b"pong")
    network.settle()
    assert [(envelope["id"], envelope["st"], body)
            for envelope, body in client.received()] == [(99, Status.SUCCESS, b"pong")]


@pytest.fixture
def net():
    """A and B, each with an actor (of ``work-a``, ``work-b``) and a client, knowing
    each other."""
    network = Network("A", "B")
    network.actor_a = network["A"].attach("worker-a", ["work-a"])
    network.actor_b = network["B"].attach("worker-b", ["work-b"])
    network.client_a = network["A"].attach("asker-a")
    network.client_b = network["B"].attach("asker-b")
    network.settle()
    assert "worker-b" in network["A"].dispatcher.registry.by_name
    assert "worker-a" in network["B"].dispatcher.registry.by_name
    return network


def test_a_request_from_a_reaches_an_actor_on_b_and_the_answer_names_both_dispatchers(net):
    """An ask on A for B's actor crosses the bus, is answered, and its route shows A and B."""
    net.client_a.ask(7, "work-b", "run", b"payload")
    net.settle()
    [(request, body)] = net.actor_b.received()
    assert (request["svc"], request["m"], body) == ("work-b", "run", b"payload")
    net.actor_b.answer(request, b"done")
    net.settle()
    [(answer, body)] = net.client_a.received()
    assert (answer["id"], answer["st"], answer["src"], body) == (7, Status.SUCCESS,
                                                                "worker-b", b"done")
    assert hop_names(answer["r"]) == ["asker-a", "A", "B", "worker-b", "B", "A"]
    assert len(net["A"].dispatcher.inflight) == len(net["B"].dispatcher.inflight) == 0


def test_frames_written_before_the_other_ends_open_wait_for_it_and_then_go_in_order():
    """Asks made while B's stream to A is not open yet stay at A, then cross in order."""
    network = Network("A", "B")
    client = network["A"].attach("asker-a")
    worker = network["B"].attach("worker-b", ["work-b"])
    network.hub.hold(on_link("A", "B"))
    network.settle()
    assert "worker-b" in network["A"].dispatcher.registry.by_name
    for rid in (1, 2, 3):
        client.ask(rid, "work-b", "run", b"ask %d" % rid)
    network.settle()
    assert crossed(network.hub, frames_on_link("B", "A")) == 0
    assert worker.received() == []
    network.hub.release()
    network.settle()
    requests = worker.received()
    assert [body for _, body in requests] == [b"ask 1", b"ask 2", b"ask 3"]
    for request, body in requests:
        worker.answer(request, body.replace(b"ask", b"answer"))
    network.settle()
    assert [(envelope["id"], body) for envelope, body in client.received()] == [
        (1, b"answer 1"), (2, b"answer 2"), (3, b"answer 3")]
    assert network["A"].stats["federation_gaps"] == network["B"].stats["federation_gaps"] == 0


def test_a_link_whose_opens_were_both_lost_opens_again_and_carries_what_waited():
    """The first open of each end is lost: each end opens again within a keepalive
    interval, and the asks that waited meanwhile are answered."""
    network = Network("A", "B")
    client = network["A"].attach("asker-a")
    worker = network["B"].attach("worker-b", ["work-b"])
    network.hub.drop(is_open("A", "B"))
    network.hub.drop(is_open("B", "A"))
    network.settle()
    assert len(network.hub.dropped) == 2
    client.ask(1, "work-b", "run", b"waited")
    network.advance(2 * INTERVAL)
    [(request, body)] = worker.received()
    assert body == b"waited"
    worker.answer(request, b"answered")
    network.settle()
    assert [(envelope["id"], envelope["st"], body) for envelope, body in client.received()] \
        == [(1, Status.SUCCESS, b"answered")]


def test_a_lost_message_closes_the_link_at_both_ends_and_fails_each_request_on_it_once(net):
    """A gap closes the link at both ends: what was in flight across it fails once,
    ``actor_lost`` naming the lost link, and nothing more comes, not even a timeout."""
    links = net["A"].link_to("B"), net["B"].link_to("A")
    net.client_a.ask(1, "work-b")
    net.client_b.ask(2, "work-a")
    net.settle()
    [(at_b, _)] = net.actor_b.received()
    [(at_a, _)] = net.actor_a.received()
    net.hub.drop(frames_on_link("B", "A"))
    net.client_a.ask(3, "work-b")
    net.client_a.ask(4, "work-b")
    net.settle()
    assert net["B"].stats["federation_gaps"] == 1
    assert net.actor_b.received() == [({"k": Kind.CANCEL, "id": at_b["id"]}, b"")]
    assert net["A"].link_to("B") is not links[0] and net["B"].link_to("A") is not links[1]
    lost_at_a = outcomes(net.client_a)
    assert [(rid, status) for rid, status, _ in lost_at_a] == [
        (1, Status.ACTOR_LOST), (3, Status.ACTOR_LOST), (4, Status.ACTOR_LOST)]
    assert all("the link to dispatcher B was lost: dispatcher B closed the link" in why
               for _, _, why in lost_at_a)
    [(rid, status, why)] = outcomes(net.client_b)
    assert (rid, status) == (2, Status.ACTOR_LOST)
    assert "the link to dispatcher A was lost: 1 messages from dispatcher A were lost" in why
    net.actor_b.answer(at_b)
    net.actor_a.answer(at_a)
    net.advance(TIMEOUT + 1)
    assert net.client_a.received() == [] and net.client_b.received() == []
    assert len(net["A"].dispatcher.inflight) == len(net["B"].dispatcher.inflight) == 0
    assert_answered(net, net.client_a, "work-b", net.actor_b)


def test_frames_that_follow_a_gap_are_refused_without_closing_the_links_that_replace_it(
        net):
    """One of A's messages is lost and two more follow at once: B closes on the gap and
    refuses the last as of a stream it no longer knows; the refusal closes nothing
    but A's old stream, so the ends settle on one new pair of streams (no storm of
    resets and opens), each ask fails ``actor_lost`` once, and new asks are answered."""
    net.hub.drop(frames_on_link("B", "A"))
    for rid in (1, 2, 3):
        net.client_a.ask(rid, "work-b")
    net.settle()
    assert net["B"].stats["federation_gaps"] == net["B"].stats["federation_stale_messages"] == 1
    assert (crossed(net.hub, is_reset("A", "B")), crossed(net.hub, is_reset("B", "A"))) == (2, 1)
    assert [(rid, status) for rid, status, _ in outcomes(net.client_a)] == [
        (1, Status.ACTOR_LOST), (2, Status.ACTOR_LOST), (3, Status.ACTOR_LOST)]
    links = net["A"].link_to("B"), net["B"].link_to("A")
    net.advance(2 * INTERVAL)
    assert (net["A"].link_to("B"), net["B"].link_to("A")) == links
    assert_answered(net, net.client_a, "work-b", net.actor_b)
    assert_answered(net, net.client_b, "work-a", net.actor_a)


def test_asks_on_a_closed_link_fail_even_when_a_hello_replaces_its_actors_first(net):
    """A closes its link on a gap, and B's hello is read before the link's loss is: the
    hello moves B's actors to a new link, yet every ask in flight on the old one still
    fails ``actor_lost`` at once (none is left to time out)."""
    for rid in (1, 2, 3):
        net.client_a.ask(rid, "work-b")
    net.settle()
    requests = [request for request, _ in net.actor_b.received()]
    net.hub.drop(frames_on_link("A", "B"))
    net.actor_b.answer(requests[0])
    net.actor_b.answer(requests[1])
    net["B"].federation.say_hello()
    net.settle()
    assert net["A"].stats["federation_gaps"] == 1
    assert [(rid, status) for rid, status, _ in outcomes(net.client_a)] == [
        (1, Status.ACTOR_LOST), (2, Status.ACTOR_LOST), (3, Status.ACTOR_LOST)]
    net.actor_b.answer(requests[2])
    net.advance(TIMEOUT + 1)
    assert net.client_a.received() == []
    assert net.actor_b.received() == [({"k": Kind.CANCEL, "id": requests[2]["id"]}, b"")]
    assert len(net["A"].dispatcher.inflight) == 0
    assert_answered(net, net.client_a, "work-b", net.actor_b)


@pytest.mark.parametrize("used", [True, False], ids=["links-used", "links-idle"])
@pytest.mark.parametrize("cut", ["A", "B"])
def test_a_dispatcher_cut_off_for_less_than_a_holdtime_is_answered_once_it_is_back(
        net, cut, used):
    """One dispatcher loses the bus and comes back before the other notices: once they
    have heard each other again, asks are answered both ways, whether or not the old
    links had carried frames."""
    if used:
        assert_answered(net, net.client_a, "work-b", net.actor_b)
        assert_answered(net, net.client_b, "work-a", net.actor_a)
    other = "B" if cut == "A" else "A"
    net.hub.cut(net[cut].bus)
    net.settle()
    assert not net[cut].federation.remotes
    net.advance(HOLDTIME / 2)
    assert cut in net[other].federation.remotes
    net.hub.rejoin(net[cut].bus)
    net.advance(2 * INTERVAL)
    assert other in net[cut].federation.remotes
    assert_answered(net, net.client_a, "work-b", net.actor_b)
    assert_answered(net, net.client_b, "work-a", net.actor_a)
    assert net["A"].stats["federation_gaps"] == net["B"].stats["federation_gaps"] == 0


def test_an_ask_sent_on_a_stream_the_rejoined_end_forgot_fails_once_and_soon(net):
    """B was cut off and is back, but has not heard A again: A's ask on its old stream
    fails ``actor_lost`` once B's new stream makes A close the old one, well before
    its deadline, and nothing more comes."""
    assert_answered(net, net.client_a, "work-b", net.actor_b)
    net.hub.cut(net["B"].bus)
    net.advance(HOLDTIME / 2)
    net.hub.rejoin(net["B"].bus)
    net.settle()
    net.client_a.ask(1, "work-b")
    net.advance(2 * INTERVAL)
    [(rid, status, why)] = outcomes(net.client_a)
    assert (rid, status) == (1, Status.ACTOR_LOST)
    assert "the link to dispatcher B was lost: dispatcher B opened a new link" in why
    assert net.actor_b.received() == []
    net.advance(TIMEOUT)
    assert net.client_a.received() == []
    assert_answered(net, net.client_a, "work-b", net.actor_b)


def test_a_message_of_a_stream_the_receiver_does_not_know_is_refused_and_closes_the_link(net):
    """B lost A's stream (a gap) and A heard neither B's reset nor B's new open: A's
    next frame on the old stream is refused with a reset, which closes A's link and
    fails A's asks there with ``actor_lost``; the new streams then carry asks again."""
    net.client_a.ask(1, "work-b")
    net.settle()
    [(request, _)] = net.actor_b.received()
    net.hub.drop(frames_on_link("B", "A"))
    net.hub.drop(on_link("A", "B"), count=2)
    net.client_a.ask(2, "work-b")
    net.client_a.ask(3, "work-b")
    net.settle()
    assert [HEADER.unpack_from(m.data)[3] for m in net.hub.dropped[1:]] == [RESET, OPEN]
    assert net.client_a.received() == []
    resets = crossed(net.hub, is_reset("A", "B"))
    net.client_a.ask(4, "work-b")
    net.settle()
    assert net["B"].stats["federation_stale_messages"] == 1
    assert crossed(net.hub, is_reset("A", "B")) == resets + 1
    assert [(rid, status) for rid, status, _ in outcomes(net.client_a)] == [
        (1, Status.ACTOR_LOST), (2, Status.ACTOR_LOST), (3, Status.ACTOR_LOST),
        (4, Status.ACTOR_LOST)]
    assert net.actor_b.received() == [({"k": Kind.CANCEL, "id": request["id"]}, b"")]
    assert_answered(net, net.client_a, "work-b", net.actor_b)


@pytest.mark.parametrize("data", [
    b"\xff\x00 not CBOR",
    codec.encode({**codec.decode(hello("C", 1, "host", 1, [], [], {})), "boot": "one"}),
    hello("C", 1, "host", 1, [(f"a{n}", ["s"], 0) for n in range(MAX_ACTORS + 1)], [], {}),
], ids=["not-cbor", "wrong-types", "too-many-actors"])
def test_a_malformed_hello_is_counted_and_ignored(net, data):
    """A hello that is not what a dispatcher sends changes nothing but a counter."""
    rogue = MemoryBus(net.hub, max_payload=len(data))
    rogue.connected = True
    rogue.publish(f"actornet.{NETWORK}.hello", data)
    net.settle()
    for name, other in (("A", "B"), ("B", "A")):
        assert net[name].stats["federation_bad_hellos"] == 1
        assert list(net[name].federation.remotes) == [other]
    assert "a0" not in net["A"].dispatcher.registry.by_name
    assert_answered(net, net.client_a, "work-b", net.actor_b)


def test_a_hello_from_a_new_incarnation_fails_what_was_in_flight_there(net):
    """B restarts (a new boot, same name): what A had in flight at the old B fails
    ``actor_lost`` once ("it restarted"); A's asks reach the new B, whose actors A
    tracks as its own (no false name clash), so they leave when it is lost too."""
    net.client_a.ask(1, "work-b")
    net.settle()
    assert len(net.actor_b.received()) == 1
    old = net["B"]
    new = net.restart("B")
    worker = new.attach("worker-b", ["work-b"])
    net.settle()
    assert net["A"].federation.remotes["B"].boot == new.federation.boot != old.federation.boot
    [(rid, status, why)] = outcomes(net.client_a)
    assert (rid, status) == (1, Status.ACTOR_LOST)
    assert "dispatcher B was lost: it restarted" in why
    net.advance(TIMEOUT + 1)
    assert net.client_a.received() == []
    assert net["A"].stats["federation_name_clashes"] == 0
    assert_answered(net, net.client_a, "work-b", worker)
    new.crash()
    net.advance(HOLDTIME + 2 * INTERVAL)
    assert "worker-b" not in net["A"].dispatcher.registry.by_name


def test_a_dispatcher_silent_for_a_holdtime_is_forgotten_with_its_actors(net):
    """B falls silent: after a holdtime A forgets it, its actors leave A's registry and
    what A had in flight there fails ``actor_lost`` once."""
    net.client_a.ask(1, "work-b")
    net.settle()
    net["B"].crash()
    net.advance(HOLDTIME - INTERVAL / 2)
    assert "worker-b" in net["A"].dispatcher.registry.by_name
    assert net.client_a.received() == []
    net.advance(2 * INTERVAL)
    assert "B" not in net["A"].federation.remotes
    assert "worker-b" not in net["A"].dispatcher.registry.by_name
    assert net["A"].stats["federation_dispatchers_lost"] == 1
    [(rid, status, why)] = outcomes(net.client_a)
    assert (rid, status) == (1, Status.ACTOR_LOST)
    assert "dispatcher B was lost: no frame for" in why, why
    net.advance(TIMEOUT + 1)
    assert net.client_a.received() == []
    net.client_a.ask(2, "work-b")
    assert [(rid, status) for rid, status, _ in outcomes(net.client_a)] == [
        (2, Status.NO_WORKERS)]


def test_two_dispatchers_with_one_name_log_and_count_the_clash():
    """Two dispatchers called A hear each other: each logs and counts the clash, and
    neither takes the other for a dispatcher of its network."""
    clock = Clock()
    hub = Hub(clock)
    first, second = Node(hub, "A"), Node(hub, "A")
    with capturedLogs() as events:
        clock.advance(0)
    for node in (first, second):
        assert node.stats["federation_name_clashes"] == 1
        assert node.federation.remotes == {}
    clashes = [formatEvent(event) for event in events if "also called" in formatEvent(event)]
    assert len(clashes) == 2 and "'A'" in clashes[0] and "must be unique" in clashes[0]


def test_a_remote_actor_whose_name_is_held_here_is_not_kept_however_many_hellos_come():
    """B's actor has the name of one of A's (admitted with no store to claim it in):
    A keeps its own, counts the clash, and keeps nothing of B's, hello after hello."""
    network = Network("A", "B")
    mine = network["A"].attach("twin", ["work"])
    network["B"].attach("twin", ["work"])
    network.settle()
    network.advance(4 * INTERVAL)
    federation = network["A"].federation
    assert federation.dispatcher.registry.by_name["twin"] is mine.protocol.peer
    assert network["A"].stats["federation_name_clashes"] >= 4
    assert federation.links["B"].protocol.actors == set()


def test_a_frame_larger_than_max_payload_crosses_in_pieces_and_arrives_whole():
    """A request and an answer of 10 KiB over a bus taking 1 KiB a message cross in
    many messages, none over the limit, and arrive whole."""
    network = Network("A", "B", max_payload=1024)
    client = network["A"].attach("asker-a")
    worker = network["B"].attach("worker-b", ["work-b"])
    network.settle()
    body = bytes(range(256)) * 40
    client.ask(1, "work-b", "run", body)
    network.settle()
    [(request, received)] = worker.received()
    assert received == body
    assert crossed(network.hub, frames_on_link("B", "A")) >= len(body) // 1024
    worker.answer(request, body[::-1])
    network.settle()
    [(answer, returned)] = client.received()
    assert (answer["st"], returned) == (Status.SUCCESS, body[::-1])
    assert crossed(network.hub, frames_on_link("A", "B")) >= len(body) // 1024
    assert max(len(message.data) for message in network.hub.crossed) <= 1024


class Soup:
    """Dispatchers A, B, C under a seeded mix of faults: lost link messages and
    hellos, cuts from the bus of up to 5 s, restarts; actors answer at once or a
    little later.  ``outcomes`` maps each ask to every answer it got."""

    def __init__(self, seed):
        self.random = random.Random(seed)
        self.network = Network("A", "B", "C")
        self.actors = {name: [self.network[name].attach(f"worker-{name}", ["work"])]
                       for name in "ABC"}
        self.clients = {name: [self.network[name].attach(f"asker-{name}")] for name in "ABC"}
        self.outcomes = {}
        self._asks = 0
        self.network.settle()

    def stir(self, seconds):
        """Ask and strike faults at random for ``seconds``; then drop nothing more."""
        while self.network.clock.seconds() < seconds:
            if self.random.random() < 0.3:
                at = self.random.choice("ABC")
                self.ask(at, self.random.choice("ABC".replace(at, "")))
            if self.random.random() < 0.1:
                self._fault()
            self.step()
        self.network.hub.heal()

    def ask(self, at, of):
        """An ask of the client at dispatcher ``at`` for the actor of ``of``."""
        client = self.clients[at][-1]
        self._asks += 1
        client.send(messages.request(self._asks, "work", "run", [client.stamp(1)],
                                     target=f"worker-{of}"))
        self.outcomes[client, self._asks] = []
        return client, self._asks

    def wait(self, seconds):
        for _ in range(round(seconds / 0.125)):
            self.step()

    def step(self):
        self.network.advance(0.125)
        for name in "ABC":
            for actor in self.actors[name]:
                for request, _ in actor.received():
                    if request["k"] == Kind.CANCEL:
                        continue
                    self.network.clock.callLater(self.random.choice([0, 0, 0.5, 2.5]),
                                                 actor.answer, request)
            for client in self.clients[name]:
                for envelope, _ in client.received():
                    self.outcomes[client, envelope["id"]].append(envelope["st"])

    def _fault(self):
        network, pick = self.network, self.random.random()
        name = self.random.choice("ABC")
        if pick < 0.4:
            network.hub.drop(lambda message: ".link." in message.subject
                             or (".hello" in message.subject and self.random.random() < 0.3),
                             count=self.random.choice([1, 1, 2, 3]))
        elif pick < 0.8:
            if network[name].bus.connected:
                network.hub.cut(network[name].bus)
                network.clock.callLater(self.random.choice([0.2, 1.0, 2.0, 2.9, 3.5, 5.0]),
                                        network.hub.rejoin, network[name].bus)
        elif network[name].bus.connected:
            node = network.restart(name)
            self.actors[name].append(node.attach(f"worker-{name}", ["work"]))
            self.clients[name].append(node.attach(f"asker-{name}"))


@pytest.mark.parametrize("seed", range(30))
def test_under_lost_messages_cuts_and_restarts_every_ask_resolves_once_and_links_recover(
        seed):
    """Whatever the faults, every ask resolves exactly once and none waits for its
    deadline (it is answered, or fails when its link or dispatcher is lost), no
    request is left in flight, and once the faults stop every dispatcher's asks reach
    every other's actor: no two ends stay without a working link, and none keep
    closing and opening links forever."""
    soup = Soup(seed)
    soup.stir(12)
    soup.wait(TIMEOUT + 8)
    assert {ask: statuses for ask, statuses in soup.outcomes.items()
            if len(statuses) != 1 or statuses[0] == Status.TIMEOUT} == {}
    assert {name: len(node.dispatcher.inflight) for name, node in soup.network.nodes.items()} \
        == {"A": 0, "B": 0, "C": 0}
    for at in "ABC":
        for of in "ABC".replace(at, ""):
            ask = soup.ask(at, of)
            soup.wait(3)
            assert soup.outcomes[ask] == [Status.SUCCESS], (at, of)
