"""The guarantees, proved under load while faults happen, in both kit modes.

Each test sends 2,000 asks at a steady rate through a cluster of three workers
and injects one fault a third of the way through.  Afterwards: every ask
resolved exactly once (ok + errors == sent, 0 lost, 0 duplicates), every
answer was the answer to its own request, no request was run twice, and the
dispatcher's in-flight table is empty.  Run with ``-s`` to see the counts.
"""

from collections import Counter

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from actornet import Actor, handler
from actornet.testing import MODES, Cluster
from actornet.testing.load import steady_load

pytestmark = pytest.mark.timeout(60)

TOTAL = 2000
RATE = 1000
KEEPALIVE = dict(keepalive_interval=0.2, keepalive_multiplier=3)


class Worker(Actor):
    """Takes a moment per request and counts every request it runs."""

    services = ("work",)
    runs = Counter()

    @handler
    async def do(self, bag):
        type(self).runs[bag["n"]] += 1
        await deferLater(self.clock, 0.005, lambda: None)
        return {"n": bag["n"], "by": self.name}


async def run_with_fault(mode, fault, *, idempotent=False, asker_name="asker"):
    """Run the load on a fresh 3-worker cluster, calling ``fault(cluster)`` after
    a third of the outcomes; returns (cluster, report)."""
    Worker.runs = Counter()
    cluster = await Cluster(mode=mode, **KEEPALIVE).start()
    for i in (1, 2, 3):
        await cluster.add(Worker(f"worker-{i}"))
    asker = await cluster.add(Actor(asker_name))
    injected = []

    def progress(report):
        if not injected and len(report.answers) >= TOTAL // 3:
            injected.append(cluster.clock.callLater(0, fault, cluster))

    report = await steady_load(asker, "work", "do", total=TOTAL, rate=RATE,
                               clock=cluster.clock, timeout=2.0, idempotent=idempotent,
                               progress=progress)
    await cluster.wait_for(lambda: len(cluster.dispatcher.inflight) == 0, timeout=10,
                           what="an empty in-flight table")
    return cluster, report


def check(name, mode, cluster, report, *, retried=False):
    print(f"\nFAULT {name} [{mode}]: {report.summary()} "
          f"inflight_after={len(cluster.dispatcher.inflight)} "
          f"asker_pending={cluster.services['asker'].actor.context.session.outstanding}")
    assert report.sent == TOTAL
    assert report.ok + report.failed == report.sent
    assert report.lost == 0 and report.duplicates == 0 and report.mismatched == 0
    assert len(cluster.dispatcher.inflight) == 0
    assert cluster.services["asker"].actor.context.session.outstanding == 0
    if not retried:
        assert max(Worker.runs.values()) == 1, "a request that is not idempotent ran twice"


def kill_worker(cluster):
    ensureDeferred(cluster.kill("worker-1"))


def cut_worker(cluster):
    ensureDeferred(cluster.cut("worker-1"))


def freeze_worker(cluster):
    cluster.freeze("worker-1")


def restart_dispatcher(cluster):
    ensureDeferred(cluster.restart_dispatcher())


def delay_worker(cluster):
    cluster.delay("worker-1", 0.5)


def drop_on_worker(cluster):
    cluster.drop("worker-1", count=20)


FAULTS = {
    "kill-worker": kill_worker,
    "cut-connection": cut_worker,
    "freeze-past-keepalive": freeze_worker,
    "restart-dispatcher": restart_dispatcher,
    "delay-link": delay_worker,
    "drop-on-link": drop_on_worker,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FAULTS)
@pytest_twisted.ensureDeferred
async def test_every_ask_resolves_exactly_once_under_load_and_faults(name, mode):
    """2,000 asks with one fault: nothing lost, nothing doubled, nothing left in flight."""
    cluster, report = await run_with_fault(mode, FAULTS[name])
    try:
        check(name, mode, cluster, report)
        if name in ("kill-worker", "cut-connection", "freeze-past-keepalive"):
            assert report.errors["actor_lost"] + report.errors["timeout"] >= 1
        if name == "drop-on-link":
            assert report.errors["timeout"] >= 1
    finally:
        await cluster.stop()


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_idempotent_asks_survive_a_killed_worker(mode):
    """Idempotent asks whose worker dies are retried once elsewhere: all 2,000 succeed."""
    cluster, report = await run_with_fault(mode, kill_worker, idempotent=True)
    try:
        check("kill-worker-idempotent", mode, cluster, report, retried=True)
        assert report.ok == TOTAL
        assert cluster.dispatcher.stats["retried"] >= 1
    finally:
        await cluster.stop()


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_an_asker_that_disconnects_leaks_nothing(mode):
    """A second asker leaving mid-load: its pending asks fail at once, the dispatcher
    discards their answers, and the first asker's load is untouched."""
    Worker.runs = Counter()
    cluster = await Cluster(mode=mode, **KEEPALIVE).start()
    try:
        for i in (1, 2, 3):
            await cluster.add(Worker(f"worker-{i}"))
        asker = await cluster.add(Actor("asker"))
        leaver = await cluster.client("leaver")
        left = [leaver.ask("work", "do", {"n": -i}, timeout=30) for i in range(1, 51)]
        await cluster.wait_for(lambda: len(cluster.dispatcher.inflight) >= 1)
        cluster.links["leaver"].transport.abortConnection()
        outcomes = Counter()
        for ask in left:
            ask.addCallbacks(lambda _: outcomes.update(["ok"]),
                             lambda f: outcomes.update([type(f.value).__name__]))
        report = await steady_load(asker, "work", "do", total=TOTAL, rate=RATE,
                                   clock=cluster.clock, timeout=2.0)
        await cluster.wait_for(lambda: len(cluster.dispatcher.inflight) == 0)
        check("asker-disconnects", mode, cluster, report)
        assert report.ok == TOTAL
        print(f"leaver's 50 asks: {dict(outcomes)}; asks cancelled when it left: "
              f"{cluster.dispatcher.stats['discarded_asks']}")
        assert sum(outcomes.values()) == 50 and set(outcomes) <= {"ok", "ActorLost"}
        assert outcomes["ActorLost"] >= 1
        assert "leaver" not in cluster.snapshot().names
        assert leaver.session.outstanding == 0
    finally:
        await cluster.stop()
