"""Fuzzing a real dispatcher on loopback with hostile TCP connections.

Several raw connections send mutated valid frames, random CBOR and frames cut
short (then hang up), reconnecting whenever the dispatcher hangs up on them,
while a fuzzing worker registers a service and answers its requests with
mutated RESPONSE frames, and a normal client keeps asking.  Afterwards the
network must still answer the client, every ask it made must have been
answered by the dispatcher (never by the client's own timeout), the in-flight
table must be empty, and nothing may have been logged as a failure.

The frames come from a seeded ``random.Random`` (the seed is in every failure
message); ``ACTORNET_FUZZ_SECONDS`` runs rounds with fresh seeds until the time
is up (see tests/fuzz/README.md).
"""

import random
import time

import pytest_twisted
from fuzz_budget import (
    SECONDS,
    fuzz_timeout_on_the_reactor,
    memory_peak_below,
    no_logged_failures,
)
from fuzz_inputs import (
    RandomPicker,
    body,
    mutate_envelope,
    mutated_frame,
    random_cbor_frame,
    valid_envelope,
    valid_response,
)
from sample_actors import Echo
from twisted.internet import defer, endpoints, reactor
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.task import deferLater

from actornet.protocols import codec, envelope, messages
from actornet.protocols.codes import Kind
from actornet.protocols.errors import ActornetError, RequestTimeout
from actornet.protocols.framing import FrameProtocol, encode_frame
from actornet.protocols.stamp import stamp_bytes
from actornet.testing import Cluster

pytestmark = fuzz_timeout_on_the_reactor

FRAMES = 2000
SENDERS = 4
CLIENT_TIMEOUT = 10.0
ROUND_TIMEOUT = 25.0
SERVICES = ("echo", "fuzzed", "svc", "mmi", "nosuch")


class RawConnection(FrameProtocol):
    """A TCP connection to the dispatcher that writes whatever it is told to and
    checks that everything the dispatcher writes back is a well-formed frame."""

    def __init__(self, on_frame=None):
        super().__init__()
        self.on_frame = on_frame
        self.lost = Deferred()

    def frameReceived(self, envelope_bytes, frame_body):
        sent = codec.decode(bytes(envelope_bytes))
        envelope.check(sent)
        if self.on_frame is not None:
            self.on_frame(self, sent)

    def connectionLost(self, reason):
        self.lost.callback(None)

    @property
    def open(self):
        return not self.lost.called


async def connect_raw(cluster, on_frame=None):
    endpoint = endpoints.clientFromString(reactor, cluster.endpoint)
    return await endpoints.connectProtocol(endpoint, RawConnection(on_frame))


def pause():
    """Let the reactor run (the dispatcher reads what was written)."""
    return deferLater(reactor, 0, lambda: None)


class Budget:
    """How many hostile frames are left to send, shared by every sender."""

    def __init__(self, frames):
        self.left = frames

    def take(self):
        self.left -= 1
        return self.left >= 0


def hostile_frame(pick):
    """One frame a hostile connection sends: random CBOR, a mutated frame of any
    kind, or (half the time) an ask of echo or fuzzed, mutated or not."""
    how = pick.integer(0, 9)
    if how < 2:
        return random_cbor_frame(pick)
    if how < 5:
        sent = valid_envelope(pick, service=pick.choice(SERVICES), ids=(1, 2, 3, 4))
        return mutated_frame(pick, sent, body(pick))
    ask = messages.request(pick.integer(1, 2**20), pick.choice(("echo", "fuzzed", "fuzzed")),
                           pick.choice(("echo", "run")), [],
                           target=pick.choice(("any", "any", "all")),
                           ttl=pick.choice((None, 0.0, 0.2, 1e9)),
                           idempotent=pick.choice((True, False)))
    if how < 7:
        return mutated_frame(pick, ask, body(pick))
    return encode_frame(ask, body(pick))


async def hostile_sender(cluster, pick, number, budget, asker):
    """Send frames on fresh connections until the budget is spent; some connections
    register first, some end with a frame cut short.  Now and then the counting
    asker asks too."""
    while budget.left > 0:
        connection = await connect_raw(cluster)
        if pick.integer(0, 3):
            connection.transport.write(encode_frame(messages.register(f"raw-{number}")))
        while connection.open and budget.take():
            frame = hostile_frame(pick)
            if len(frame) > 1 and not pick.integer(0, 30):
                connection.transport.write(frame[:pick.integer(0, len(frame) - 1)])
                break
            connection.transport.write(frame)
            if not pick.integer(0, 9):
                asker.ask(pick)
            if not pick.integer(0, 3):
                await pause()
        connection.transport.loseConnection()
        await connection.lost


class FuzzingWorker:
    """Registers ``fuzzed`` and answers every request with a maybe-mutated
    RESPONSE, reconnecting whenever the dispatcher hangs up on it."""

    def __init__(self, cluster, pick):
        self.cluster = cluster
        self.pick = pick
        self.connection = None
        self.stopped = False
        self.answered = 0

    async def run(self):
        while not self.stopped:
            self.connection = await connect_raw(self.cluster, self.answer)
            self.connection.transport.write(
                encode_frame(messages.register("fuzz-worker", ["fuzzed"])))
            await self.connection.lost
            await deferLater(reactor, 0.01, lambda: None)

    def answer(self, connection, sent):
        if sent["k"] != Kind.REQUEST or not sent.get("id") or self.stopped:
            return
        pick = self.pick
        route = sent.get("r", []) + [stamp_bytes("fuzz-worker", "h", 1, 1, 1, 0.0, 0.0, 1)]
        response = valid_response(pick, sent["id"], route)
        if pick.integer(0, 2) == 0:
            response = mutate_envelope(pick, response)
        frame = encode_frame(response, body(pick))
        if pick.integer(0, 4) == 0:
            frame = mutated_frame(pick, response, body(pick))
        self.answered += 1
        connection.transport.write(frame)

    def stop(self):
        """Stop answering (requests left with it must time out at the dispatcher)."""
        self.stopped = True


async def normal_asks(client, budget, seed):
    """Ask echo and fuzzed while the fuzzers run; returns how many times.

    Every ask must be answered by the dispatcher: with a bag (echo's holds what
    was sent) or an error, never by the client's own timeout (a hostile
    connection may have registered for echo too, and not answer).
    """
    asked = 0
    while budget.left > 0:
        for service, method in (("echo", "echo"), ("fuzzed", "run")):
            asking = client.ask(service, method, {"n": asked}, timeout=CLIENT_TIMEOUT)
            try:
                bag = await asking.addTimeout(CLIENT_TIMEOUT + 2, reactor)
            except defer.TimeoutError:
                raise AssertionError(f"seed {seed}: an ask of {service} never fired, not even "
                                     "with the client's own timeout") from None
            except RequestTimeout as e:
                assert not e.message.startswith("no answer to"), f"seed {seed}: {e}"
            except ActornetError:
                pass
            else:
                assert service != "echo" or bag["n"] == asked, f"seed {seed}: {bag}"
        asked += 1
    return asked


class CountingAsker:
    """A raw, well-behaved connection that asks and counts the answers to each id,
    so an answer that comes twice is seen (a client would drop it unseen)."""

    def __init__(self):
        self.connection = None
        self.answers = {}
        self.asked = 0
        self._waiting = []

    async def open(self, cluster):
        self.connection = await connect_raw(cluster, self.heard)
        self.connection.transport.write(encode_frame(messages.register("counting-asker")))

    def heard(self, connection, sent):
        if sent["k"] == Kind.RESPONSE:
            self.answers[sent["id"]] = self.answers.get(sent["id"], 0) + 1
            if len(self.answers) >= self.asked:
                waiting, self._waiting = self._waiting, []
                for waiter in waiting:
                    waiter.callback(None)

    def ask(self, pick):
        self.asked += 1
        request = messages.request(self.asked, pick.choice(("echo", "fuzzed")),
                                   pick.choice(("echo", "run")), [],
                                   target=pick.choice(("any", "all")), ttl=0.5,
                                   idempotent=pick.choice((True, False)))
        self.connection.transport.write(encode_frame(request, body(pick)))

    async def check(self, seed):
        """Once the dispatcher has nothing in flight, every ask must be answered once."""
        if len(self.answers) < self.asked:
            waiter = Deferred()
            self._waiting.append(waiter)
            try:
                await waiter.addTimeout(5.0, reactor)
            except defer.TimeoutError:
                pass
        assert self.connection.open, f"seed {seed}: the dispatcher hung up on a good asker"
        expected = dict.fromkeys(range(1, self.asked + 1), 1)
        assert self.answers == expected, f"seed {seed}: not every ask answered once"


async def emptied(inflight, seed):
    """Wait until the in-flight table is empty: every deadline is at most the
    cluster's ``max_timeout`` (1 s) away, so 5 s is plenty."""
    try:
        await inflight.when_empty().addTimeout(5.0, reactor)
    except defer.TimeoutError:
        raise AssertionError(f"seed {seed}: {len(inflight)} requests still in flight "
                             "after 5 s") from None


async def fuzz_round(seed):
    cluster = await Cluster(max_timeout=1.0, request_timeout=1.0).start()
    try:
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        worker = FuzzingWorker(cluster, RandomPicker(random.Random(seed)))
        working = ensureDeferred(worker.run())
        await cluster.registered("fuzz-worker")
        asker = CountingAsker()
        await asker.open(cluster)
        await cluster.registered("counting-asker")
        budget = Budget(FRAMES)
        senders = [hostile_sender(cluster, RandomPicker(random.Random(seed + 1 + n)), n, budget,
                                  asker) for n in range(SENDERS)]
        asked, *_ = await gatherResults(
            [ensureDeferred(normal_asks(client, budget, seed))]
            + [ensureDeferred(sender) for sender in senders], consumeErrors=True)
        assert asked > 0 and worker.answered > 0 and asker.asked > 0
        worker.stop()
        await emptied(cluster.dispatcher.inflight, seed)
        await asker.check(seed)
        bag = await client.ask("echo", "echo", {"after": seed}, timeout=CLIENT_TIMEOUT)
        assert bag["after"] == seed
        for connection in (worker.connection, asker.connection):
            connection.transport.loseConnection()
        await working
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_a_dispatcher_on_loopback_survives_hostile_connections_and_a_fuzzing_worker():
    """2,000 hostile frames from raw connections and mutated answers from a worker
    leave the network answering, every ask answered once and nothing in flight."""
    stop = time.monotonic() + SECONDS
    seed = random.randrange(2**32)
    with no_logged_failures(), memory_peak_below(64):
        while True:
            try:
                await ensureDeferred(fuzz_round(seed)).addTimeout(ROUND_TIMEOUT, reactor)
            except defer.TimeoutError:
                raise AssertionError(f"seed {seed}: the round hung") from None
            seed += 100
            if time.monotonic() >= stop:
                break
