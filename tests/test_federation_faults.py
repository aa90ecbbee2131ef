"""The guarantees across dispatchers, proved under load while the federation breaks.

Two dispatchers over a three-node NATS cluster: an asker on A, one worker on A
and two on B, so asks run both locally and across NATS.  1,500 asks go out at
a steady rate and one fault strikes a third of the way through: a dispatcher
crashes, a dispatcher restarts, a NATS node is killed, a dispatcher is cut
off from NATS (and healed).  Afterwards every ask resolved exactly once (0
lost, 0 duplicated, every answer its own request's), no request ran twice,
and every dispatcher's in-flight table is empty.  Run with ``-s`` for counts.
"""

from collections import Counter

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

from actornet import Actor, handler
from actornet.testing.federated import FederatedNetwork
from actornet.testing.load import steady_load

pytestmark = pytest.mark.timeout(90)

TOTAL = 1500
RATE = 1000


class Worker(Actor):
    """Takes a moment per request and counts every request it runs."""

    services = ("work",)
    runs = Counter()
    ran_on = Counter()

    @handler
    async def do(self, bag):
        type(self).runs[bag["n"]] += 1
        type(self).ran_on[self.name] += 1
        await deferLater(self.clock, 0.005, lambda: None)
        return {"n": bag["n"], "by": self.name}


def crash_b(network):
    return network.crash("B")


def restart_b(network):
    return network.restart("B")


def kill_nats_node_of_b(network):
    return network.nats.kill(2)


async def cut_a_from_nats(network):
    network.cut("A")
    await deferLater(network.reactor, 0.5, lambda: None)
    network.heal("A")


FAULTS = {
    "crash-dispatcher": crash_b,
    "restart-dispatcher": restart_b,
    "kill-nats-node": kill_nats_node_of_b,
    "cut-dispatcher-from-nats": cut_a_from_nats,
}


@pytest.mark.parametrize("name", FAULTS)
@pytest_twisted.ensureDeferred
async def test_every_ask_resolves_exactly_once_across_dispatchers_under_faults(name):
    Worker.runs, Worker.ran_on = Counter(), Counter()
    network = await FederatedNetwork(["A", "B"], nats=3).start()
    try:
        await network["A"].add(Worker("worker-a"))
        for i in (1, 2):
            await network["B"].add(Worker(f"worker-b{i}"))
        await network.reaches("worker-b2")
        asker = await network["A"].add(Actor("asker"))
        injected = []

        def progress(report):
            if not injected and len(report.answers) >= TOTAL // 3:
                injected.append(ensureDeferred(FAULTS[name](network)))

        report = await steady_load(asker, "work", "do", total=TOTAL, rate=RATE,
                                   clock=network.reactor, timeout=3.0, progress=progress)
        await injected[0]
        await network.wait_for(lambda: not any(network.in_flight().values()), 10,
                               "empty in-flight tables")
        print(f"\nFEDERATED FAULT {name}: {report.summary()} in_flight={network.in_flight()} "
              f"ran_on={dict(Worker.ran_on)}")
        assert report.sent == TOTAL
        assert report.ok + report.failed == report.sent
        assert report.lost == 0 and report.duplicates == 0 and report.mismatched == 0
        assert not any(network.in_flight().values())
        assert asker.context.session.outstanding == 0
        assert max(Worker.runs.values()) == 1, "a request that is not idempotent ran twice"
        assert report.ok > TOTAL // 3
        assert Worker.ran_on["worker-b1"] + Worker.ran_on["worker-b2"] > 0
    finally:
        await Deferred.fromCoroutine(network.stop())

