"""Long jobs end to end: handlers report progress to their asker, askers cancel."""

import pytest
import pytest_twisted
from sample_actors import Reporter
from twisted.internet.defer import Deferred

from actornet import Actor, Cancelled, RequestTimeout, handler

pytestmark = pytest.mark.timeout(20)


def settled(cluster, *actors):
    """Whether no request is in flight at the dispatcher nor being handled by ``actors``."""
    return len(cluster.dispatcher.inflight) == 0 and all(
        actor.context.session.handling == 0 for actor in actors)


async def release_when_waiting(cluster, reporter):
    """Wait for the reporter's job to start, then let it finish."""
    await cluster.wait_for(lambda: reporter.gates, what="the job to start")
    reporter.gates.pop().callback(None)


async def cancelled_once_started(cluster, method):
    """Ask a new reporter's ``method``, cancel the ask once the job has started, and
    check it fails with Cancelled; returns the reporter and the asking client."""
    reporter = await cluster.add(Reporter("reporter"))
    client = await cluster.client()
    answer = client.ask("report", method)
    await cluster.wait_for(lambda: reporter.gates, what="the job to start")
    answer.cancel()
    with pytest.raises(Cancelled):
        await answer
    return reporter, client


@pytest.mark.parametrize("method", ["count", "later", "slow"])
@pytest_twisted.ensureDeferred
async def test_progress_arrives_in_order_before_the_answer(cluster, method):
    """Reports of a plain, a Deferred-returning and an ``async def`` handler reach
    ``on_progress`` in order, all of them before the answer."""
    reporter = await cluster.add(Reporter("reporter"))
    client = await cluster.client()
    seen = []
    answer = client.ask("report", method, {"steps": 3},
                        on_progress=lambda bag: seen.append((dict(bag), bag.sender)))
    answer.addCallback(lambda bag: seen.append("answer"))
    if method != "count":
        await release_when_waiting(cluster, reporter)
    await answer
    steps = 3 if method == "count" else 1
    start = 1 if method == "count" else 0
    assert seen == [({"done": done, "total": steps}, "reporter")
                    for done in range(start, steps + 1)] + ["answer"]
    assert settled(cluster, reporter)


@pytest_twisted.ensureDeferred
async def test_progress_crosses_a_forward_to_the_original_asker(cluster):
    """Reports of the actor that forwarded and of the one it forwarded to both reach
    the original asker, in order, before the answer."""
    await cluster.add(Reporter("front", services=["front"], options={"next": "report"}))
    back = await cluster.add(Reporter("back"))
    client = await cluster.client()
    seen = []
    answer = client.ask("front", "hand_on", on_progress=lambda bag: seen.append(
        (bag.sender, dict(bag))))
    await release_when_waiting(cluster, back)
    assert (await answer) == {"finished": True}
    assert seen == [("front", {"at": "front"}), ("back", {"done": 0, "total": 1}),
                    ("back", {"done": 1, "total": 1})]


@pytest_twisted.ensureDeferred
async def test_progress_after_the_answer_goes_nowhere(cluster):
    """A handler that reports after answering is told nobody waits (False)."""

    class Late(Actor):
        services = ("late",)
        kept = None

        @handler
        def run(self, bag):
            self.kept = bag
            return {}

    late = await cluster.add(Late("late"))
    client = await cluster.client()
    seen = []
    await client.ask("late", "run", on_progress=seen.append)
    assert late.progress(late.kept, {"done": 1}) is False
    assert seen == []


@pytest_twisted.ensureDeferred
async def test_cancelling_a_deferred_handler_cancels_its_deferred(cluster):
    """Cancelling the ask fails it with Cancelled once, cancels the handler's
    Deferred, and leaves nothing in flight at either end."""
    reporter, client = await cancelled_once_started(cluster, "later")
    await cluster.wait_for(lambda: reporter.ended == ["later cancelled"])
    await cluster.wait_for(lambda: settled(cluster, reporter))
    assert client.session.outstanding == 0
    assert cluster.dispatcher.stats["cancelled"] == 1


@pytest_twisted.ensureDeferred
async def test_cancelling_an_async_handler_throws_cancelled_error_into_it(cluster):
    """The coroutine sees CancelledError where it awaits, and its ``finally`` runs;
    no answer is sent for it."""
    reporter, _ = await cancelled_once_started(cluster, "slow")
    await cluster.wait_for(lambda: "slow finally" in reporter.ended)
    assert reporter.ended == ["slow saw CancelledError", "slow finally"]
    await cluster.wait_for(lambda: settled(cluster, reporter))
    assert cluster.dispatcher.stats["dead_letters"] == 0


@pytest_twisted.ensureDeferred
async def test_a_request_cancelled_before_its_handler_ran_never_runs(cluster):
    """A request held while the actor prepares, then cancelled, is never handled."""

    class Preparing(Reporter):
        ready = None

        async def prepare(self):
            self.ready = Deferred()
            await self.ready

    reporter = await cluster.add(Preparing("reporter"), wait=False)
    await cluster.registered("reporter")
    client = await cluster.client()
    answer = client.ask("report", "count", {"steps": 1})
    await cluster.wait_for(lambda: reporter.context.session.handling == 1)
    answer.cancel()
    await cluster.wait_for(lambda: reporter.context.session.handling == 0)
    reporter.ready.callback(None)
    with pytest.raises(Cancelled):
        await answer
    assert reporter.gates == []
    assert settled(cluster, reporter)


@pytest_twisted.ensureDeferred
async def test_cancelling_after_the_answer_changes_nothing(cluster):
    """Once answered, ``cancel()`` is a no-op: no CANCEL is sent, nothing is counted."""
    await cluster.add(Reporter("reporter"))
    client = await cluster.client()
    answer = client.ask("report", "count", {"steps": 1})
    assert (await answer) == {"counted": 1}
    answer.cancel()
    stats = cluster.dispatcher.stats
    assert (stats["cancelled"], stats["dead_letters"]) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_a_deadline_that_passes_cancels_the_handler(cluster):
    """The asker times out and the handler, no longer wanted, is cancelled."""
    reporter = await cluster.add(Reporter("reporter"))
    client = await cluster.client()
    answer = client.ask("report", "slow", timeout=0.5)
    with pytest.raises(RequestTimeout):
        await answer
    await cluster.wait_for(lambda: "slow finally" in reporter.ended)
    assert "slow saw CancelledError" in reporter.ended
    await cluster.wait_for(lambda: settled(cluster, reporter))


@pytest_twisted.ensureDeferred
async def test_an_asker_that_disconnects_has_its_handlers_cancelled(cluster):
    """When the asker leaves, the handler working for it is cancelled."""
    reporter = await cluster.add(Reporter("reporter"))
    client = await cluster.client()
    answer = client.ask("report", "later")
    answer.addErrback(lambda _: None)
    await cluster.wait_for(lambda: reporter.gates, what="the job to start")
    await client.close()
    await cluster.wait_for(lambda: reporter.ended == ["later cancelled"])
    await cluster.wait_for(lambda: settled(cluster, reporter))
