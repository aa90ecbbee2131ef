"""Record a journal with a real dispatcher, replay it in memory, and compare the answers."""

import time

import pytest
import pytest_twisted

from actornet import Actor, RemoteError, handler
from actornet.protocols.codes import Status
from actornet.testing import Cluster, Difference, Outcome, read_recording, replay

pytestmark = pytest.mark.timeout(30)


class Ledger(Actor):
    """Adds numbers and keeps a running total; notes when each request arrived."""

    services = ("ledger",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.total = 0
        self.arrived = []

    @handler
    def add(self, bag):
        self.arrived.append(self.clock.seconds())
        return {"sum": bag["a"] + bag["b"]}

    @handler
    def deposit(self, bag):
        self.arrived.append(self.clock.seconds())
        self.total += bag["amount"]

    @handler
    def balance(self, bag):
        self.arrived.append(self.clock.seconds())
        return {"total": self.total}

    @handler
    def withdraw(self, bag):
        self.arrived.append(self.clock.seconds())
        if bag["amount"] > self.total:
            raise ValueError(f"only {self.total} left")
        self.total -= bag["amount"]
        return {"total": self.total}


class OffByOne(Ledger):
    """The planted bug: a sum over ten comes out one too high."""

    @handler
    def add(self, bag):
        answer = super().add(bag)
        if answer["sum"] > 10:
            answer["sum"] += 1
        return answer


class Front(Actor):
    """Passes ``add`` on to the ledger, and asks the ledger itself for ``report``."""

    services = ("front",)

    @handler
    def add(self, bag):
        return self.forward(bag, "ledger", "add")

    @handler
    async def report(self, bag):
        return {"report": await self.ask("ledger", "balance")}


async def record(path, actors, script, mode="memory"):
    """Run ``actors`` under a dispatcher that journals to ``path``; ``script(cluster,
    client)`` is the traffic.  The journal is complete once the cluster stops."""
    cluster = await Cluster(mode=mode, journal=str(path)).start()
    try:
        for actor in actors:
            await cluster.add(actor)
        await script(cluster, await cluster.client("shop"))
    finally:
        await cluster.stop()


async def sums(cluster, client):
    """Four adds at 0, 5, 5 and 65 seconds; two of them sum over ten."""
    await client.ask("ledger", "add", {"a": 1, "b": 2})
    await cluster.advance(5)
    await client.ask("ledger", "add", {"a": 6, "b": 7})
    await client.ask("ledger", "add", {"a": 3, "b": 3})
    await cluster.advance(60)
    await client.ask("ledger", "add", {"a": 20, "b": 1})


@pytest_twisted.ensureDeferred
async def test_replaying_against_the_same_actor_finds_no_difference(tmp_path):
    """The recorded answers are the ones the same actor gives again."""
    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], sums)
    assert await replay(path, actors=[Ledger("ledger-1")]) == []


@pytest_twisted.ensureDeferred
async def test_a_journal_recorded_on_sockets_replays_in_memory(tmp_path):
    """A journal written on real sockets, on the reactor's time, replays with its
    real gaps kept and no difference."""

    async def briefly(cluster, client):
        await client.ask("ledger", "add", {"a": 1, "b": 2})
        await cluster.advance(0.2)
        await client.ask("ledger", "add", {"a": 6, "b": 7})

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], briefly, mode="sockets")
    ledger = Ledger("ledger-1")
    assert await replay(path, actors=[ledger]) == []
    assert ledger.arrived[1] - ledger.arrived[0] == pytest.approx(0.2, abs=0.1)


@pytest_twisted.ensureDeferred
async def test_a_planted_bug_is_reported_for_exactly_the_requests_it_affects(tmp_path):
    """Each request whose answer changed is reported with both answers, and no other."""
    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], sums)
    adds = [request.key for request in read_recording(path)]
    differences = await replay(path, actors=[OffByOne("ledger-1")])
    assert differences == [
        Difference(adds[1], "ledger", "add", 5.0, Outcome(Status.SUCCESS, {"sum": 13}),
                   Outcome(Status.SUCCESS, {"sum": 14})),
        Difference(adds[3], "ledger", "add", 65.0, Outcome(Status.SUCCESS, {"sum": 21}),
                   Outcome(Status.SUCCESS, {"sum": 22})),
    ]


@pytest_twisted.ensureDeferred
async def test_requests_arrive_at_their_recorded_offsets_without_real_waiting(tmp_path):
    """The replay's Clock reaches each recorded offset (the last at 65 s) in well
    under a real second."""
    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], sums)
    ledger = Ledger("ledger-1")
    began = time.monotonic()
    await replay(path, actors=[ledger])
    assert time.monotonic() - began < 5
    first = ledger.arrived[0]
    assert [at - first for at in ledger.arrived] == pytest.approx([0.0, 5.0, 5.0, 65.0])


@pytest_twisted.ensureDeferred
async def test_a_request_that_failed_matches_when_it_fails_the_same_way(tmp_path):
    """A handler that raised is recorded as its error type, and a replay raising
    the same type matches; tells are replayed, so the actor's state is rebuilt."""

    async def overdrawn(cluster, client):
        client.tell("ledger", "deposit", {"amount": 5})
        await client.ask("ledger", "withdraw", {"amount": 3})
        with pytest.raises(RemoteError, match="only 2 left"):
            await client.ask("ledger", "withdraw", {"amount": 4})

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], overdrawn)
    tell, ok, failed = read_recording(path)
    assert (tell.tell, tell.answer) == (True, None)
    assert ok.answer == Outcome(Status.SUCCESS, {"total": 2})
    assert failed.answer == Outcome(Status.FAILURE, error="ValueError")
    assert await replay(path, actors=[Ledger("ledger-1")]) == []


@pytest_twisted.ensureDeferred
async def test_a_failure_that_changed_is_reported(tmp_path):
    """When the replay succeeds where the recording failed, the difference shows both."""

    class Lenient(Ledger):
        @handler
        def withdraw(self, bag):
            self.total -= bag["amount"]
            return {"total": self.total}

    async def overdrawn(cluster, client):
        with pytest.raises(RemoteError, match="only 0 left"):
            await client.ask("ledger", "withdraw", {"amount": 4})

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1")], overdrawn)
    [difference] = await replay(path, actors=[Lenient("ledger-1")])
    assert difference.recorded == Outcome(Status.FAILURE, error="ValueError")
    assert difference.replayed == Outcome(Status.SUCCESS, {"total": -4})


@pytest_twisted.ensureDeferred
async def test_requests_actors_asked_or_forwarded_are_left_to_the_actors(tmp_path):
    """A forwarded request pairs with its final answer, and only the client's requests
    are replayed: the actors ask the rest again themselves."""

    async def through_front(cluster, client):
        await client.ask("front", "add", {"a": 2, "b": 2})
        await client.ask("front", "report")

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1"), Front("front-1")], through_front)
    recorded = read_recording(path)
    assert [(r.service, r.method, r.asker, r.forwarded) for r in recorded] == [
        ("front", "add", "shop", False), ("ledger", "add", "shop", True),
        ("front", "report", "shop", False), ("ledger", "balance", "front-1", False)]
    assert recorded[0].answer == recorded[1].answer == Outcome(Status.SUCCESS, {"sum": 4})
    assert recorded[2].answer == Outcome(Status.SUCCESS, {"report": {"total": 0}})
    ledger = Ledger("ledger-1")
    assert await replay(path, actors=[ledger, Front("front-1")]) == []
    assert len(ledger.arrived) == 2


@pytest_twisted.ensureDeferred
async def test_targets_are_replayed_and_a_gathered_answer_is_compared_whole(tmp_path):
    """A request to one named actor goes to it again, and an ``all`` request's
    combined answer is compared member by member."""

    async def targeted(cluster, client):
        await client.ask("ledger", "add", {"a": 1, "b": 1}, target="ledger-2")
        await client.ask("ledger", "add", {"a": 6, "b": 6}, target="all")

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1"), Ledger("ledger-2")], targeted)
    first, second = Ledger("ledger-1"), OffByOne("ledger-2")
    [difference] = await replay(path, actors=[first, second])
    assert len(first.arrived) == 1 and len(second.arrived) == 2
    assert difference.recorded.body == {"ledger-1": {"status": 200, "result": {"sum": 12}},
                                        "ledger-2": {"status": 200, "result": {"sum": 12}}}
    assert difference.replayed.body == {"ledger-1": {"status": 200, "result": {"sum": 12}},
                                        "ledger-2": {"status": 200, "result": {"sum": 13}}}


@pytest_twisted.ensureDeferred
async def test_services_limits_the_replay_to_their_requests(tmp_path):
    """With ``services``, requests to other services are neither sent nor compared."""

    async def both(cluster, client):
        await client.ask("ledger", "add", {"a": 6, "b": 7})
        await client.ask("front", "add", {"a": 9, "b": 9})

    path = tmp_path / "journal.db"
    await record(path, [Ledger("ledger-1"), Front("front-1")], both)
    ledger = OffByOne("ledger-1")
    [difference] = await replay(path, actors=[ledger, Front("front-1")], services=["front"])
    assert (difference.service, difference.replayed.body) == ("front", {"sum": 19})
    assert len(ledger.arrived) == 1
