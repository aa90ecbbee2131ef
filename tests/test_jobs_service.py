"""The jobs service: submit answers at once, the outcome is kept and can be waited for."""

import pytest
import pytest_twisted
from sample_actors import Echo, Reporter, Stall

from actornet import ActornetError, Status
from actornet.actors.jobs import Jobs


async def started(cluster, **options):
    await cluster.add(Jobs("jobs", options=options))
    return await cluster.client()


@pytest_twisted.ensureDeferred
async def test_submit_answers_202_at_once_and_the_result_is_kept(actornet_memory_cluster):
    cluster = actornet_memory_cluster
    client = await started(cluster)
    stall = await cluster.add(Stall("stall-1"))
    submitted = await client.submit("stall", "wait", {"x": 1})
    assert submitted["status"] == 202 and submitted["actors"] == ["stall-1"]
    job = submitted["job"]
    assert (await client.job(job))["state"] == "running"
    waited = client.job(job, wait=True)
    await cluster.wait_for(lambda: stall.waiting, what="the job's request at the actor")
    assert not waited.called
    stall.waiting[0].callback({"answer": 42})
    row = await waited
    assert row["state"] == "done" and row["result"] == {"answer": 42}
    assert row["answered_by"] == "stall-1"
    assert (await client.job(job))["result"] == {"answer": 42}


@pytest_twisted.ensureDeferred
async def test_a_job_nobody_can_take_fails_at_once_with_the_status_an_ask_would_get(
        actornet_memory_cluster):
    cluster = actornet_memory_cluster
    client = await started(cluster)
    with pytest.raises(ActornetError) as unknown:
        await client.submit("nobody", "x")
    assert unknown.value.status == Status.UNKNOWN_SERVICE
    await cluster.add(Echo("echo-1"))
    with pytest.raises(ActornetError) as missing:
        await client.submit("echo", "echo", target="echo-9")
    assert missing.value.status == Status.NO_WORKERS
    await cluster.kill("echo-1")
    await cluster.gone("echo-1")
    with pytest.raises(ActornetError) as none_now:
        await client.submit("echo", "echo")
    assert none_now.value.status == Status.NO_WORKERS
    assert (await client.ask("jobs", "list"))["jobs"] == []


@pytest_twisted.ensureDeferred
async def test_a_failed_job_keeps_its_error_and_all_gathers(actornet_memory_cluster):
    cluster = actornet_memory_cluster
    client = await started(cluster)
    await cluster.add(Echo("echo-1"))
    await cluster.add(Echo("echo-2"))
    failed = await client.submit("echo", "fail", {"key": "k"})
    row = await client.job(failed["job"], wait=True)
    assert row["state"] == "failed"
    assert row["error"]["type"] == "KeyError" and row["error"]["status"] == Status.FAILURE
    gathered = await client.submit("echo", "echo", {"y": 2}, target="all")
    assert sorted(gathered["actors"]) == ["echo-1", "echo-2"]
    row = await client.job(gathered["job"], wait=True)
    assert {name: entry["result"]["answered_by"] for name, entry in row["result"].items()} \
        == {"echo-1": "echo-1", "echo-2": "echo-2"}


@pytest_twisted.ensureDeferred
async def test_a_cancelled_job_says_so_and_finished_jobs_are_dropped_after_keep_seconds(
        actornet_memory_cluster):
    cluster = actornet_memory_cluster
    client = await started(cluster, keep_seconds=60)
    stall = await cluster.add(Stall("stall-1"))
    running = await client.submit("stall", "wait")
    await cluster.wait_for(lambda: stall.waiting, what="the job's request at the actor")
    assert (await client.ask("jobs", "cancel", {"job": running["job"]}))["state"] \
        == "cancelled"
    listed = await client.ask("jobs", "list")
    assert [(row["job"], row["state"]) for row in listed["jobs"]] == [
        (running["job"], "cancelled")]
    await cluster.advance(61)
    await cluster.add(Echo("echo-1"))
    await client.submit("echo", "echo")
    listed = await client.ask("jobs", "list")
    assert running["job"] not in [row["job"] for row in listed["jobs"]]
    assert listed["dropped"] == 1
    with pytest.raises(ActornetError) as gone:
        await client.job(running["job"])
    assert gone.value.status == Status.MALFORMED_BODY and "no job" in str(gone.value)


@pytest_twisted.ensureDeferred
async def test_a_job_keeps_its_progress_and_cancelling_it_cancels_the_handler(
        actornet_memory_cluster):
    cluster = actornet_memory_cluster
    client = await started(cluster)
    reporter = await cluster.add(Reporter("reporter"))
    running = await client.submit("report", "slow")
    await cluster.wait_for(lambda: reporter.gates, what="the handler to start")
    assert (await client.job(running["job"]))["progress"] == [{"done": 0, "total": 1}]
    await client.ask("jobs", "cancel", {"job": running["job"]})
    await cluster.wait_for(lambda: "slow finally" in reporter.ended, what="the handler's end")
    assert reporter.ended == ["slow saw CancelledError", "slow finally"]
    counted = await client.submit("report", "count", {"steps": 3})
    row = await client.job(counted["job"], wait=True)
    assert row["progress"] == [{"done": n, "total": 3} for n in (1, 2, 3)]
    assert row["result"] == {"counted": 3}


@pytest_twisted.ensureDeferred
async def test_with_a_journal_a_job_is_still_answered_after_a_restart(tmp_path):
    """The job's id is its journal key; after the dispatcher and the jobs service
    restart, its outcome comes from the journal, and one that was running is lost."""
    from actornet.testing import Cluster

    cluster = await Cluster(mode="memory", journal=str(tmp_path / "journal.db")).start()
    try:
        client = await started(cluster)
        await cluster.add(Reporter("reporter"))
        counted = await client.submit("report", "count", {"steps": 2})
        assert counted["job"].startswith("dispatcher:")
        await client.job(counted["job"], wait=True)
        running = await client.submit("report", "slow")
        await cluster.services["jobs"].stopService()
        await cluster.restart_dispatcher()
        await cluster.add(Jobs("jobs"))
        client = await cluster.client()
        row = await client.job(counted["job"])
        assert row["state"] == "done" and row["result"] == {"counted": 2}
        assert row["progress"] == [{"done": 1, "total": 2}, {"done": 2, "total": 2}]
        lost = await client.job(running["job"], wait=True)
        assert lost["state"] == "lost"
        with pytest.raises(ActornetError) as unknown:
            await client.job("dispatcher:999999")
        assert "no job" in str(unknown.value)
    finally:
        await cluster.stop()
