"""Several dispatchers, one network: every target mode, forward, events, the death
watch and unique names across dispatchers federated over a real NATS cluster."""

import pytest
import pytest_twisted
from sample_actors import Counter, Echo, Reporter, Stall
from twisted.internet.defer import Deferred

from actornet import Actor, ActornetError, Cancelled, Status, handler
from actornet.actors.service import ActorService
from actornet.failover import endpoint_for
from actornet.protocols.codes import LIFECYCLE_TOPIC
from actornet.testing.federated import FederatedNetwork

pytestmark = pytest.mark.timeout(60)


class Forwarder(Actor):
    """Passes every ``relay`` on to the ``echo`` service."""

    services = ("relay",)

    @handler
    async def relay(self, bag):
        return await self.forward(bag, "echo", "echo")


@pytest.fixture
def network():
    net = FederatedNetwork(["A", "B"])
    pytest_twisted.blockon(Deferred.fromCoroutine(net.start()))
    yield net
    pytest_twisted.blockon(Deferred.fromCoroutine(net.stop()))


def hop_names(answer):
    return [stamp.name for stamp in answer.route]


@pytest_twisted.ensureDeferred
async def test_a_call_from_a_reaches_an_actor_on_b_and_the_route_shows_both(network):
    await network["B"].add(Echo("echo-b"))
    await network.reaches("echo-b")
    client = await network["A"].client("asker")
    answer = await client.ask("echo", "echo", {"x": 1})
    assert answer["answered_by"] == "echo-b" and answer["x"] == 1
    assert hop_names(answer) == ["asker", "A", "B", "echo-b", "B", "A"]
    assert network.in_flight() == {"A": 0, "B": 0}


@pytest_twisted.ensureDeferred
async def test_any_prefers_an_idle_local_actor_then_balances_over_the_network(network):
    stall_a = await network["A"].add(Stall("stall-a"))
    stall_b = await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    first = client.ask("stall", "wait", {})
    await network.wait_for(lambda: len(stall_a.waiting) == 1, what="stall-a to hold one")
    second = client.ask("stall", "wait", {})
    await network.wait_for(lambda: len(stall_b.waiting) == 1, what="stall-b to hold one")
    assert len(stall_a.waiting) == 1
    stall_a.waiting[0].callback({"by": "a"})
    stall_b.waiting[0].callback({"by": "b"})
    assert (await first)["by"] == "a" and (await second)["by"] == "b"


@pytest_twisted.ensureDeferred
async def test_all_gathers_every_actor_of_every_dispatcher_with_per_actor_errors(network):
    class Broken(Actor):
        services = ("echo",)

        @handler
        def echo(self, bag):
            raise ValueError("broken on purpose")

    await network["A"].add(Echo("echo-a"))
    await network["B"].add(Echo("echo-b"))
    await network["B"].add(Broken("broken-b"))
    await network.reaches("broken-b")
    client = await network["A"].client()
    answer = await client.ask("echo", "echo", {"x": 2}, target="all")
    assert set(answer) == {"echo-a", "echo-b", "broken-b"}
    assert answer["echo-a"]["result"]["answered_by"] == "echo-a"
    assert answer["echo-b"]["result"]["answered_by"] == "echo-b"
    assert answer["broken-b"]["status"] == Status.FAILURE
    assert answer["broken-b"]["error"]["type"] == "ValueError"


@pytest_twisted.ensureDeferred
async def test_named_actors_and_lists_of_names_reach_exactly_those_wherever_they_are(network):
    for name, where in (("e1", "A"), ("e2", "B"), ("e3", "B")):
        await network[where].add(Echo(name))
    await network.reaches("e3")
    client = await network["A"].client()
    assert (await client.ask("echo", "echo", {}, target="e2"))["answered_by"] == "e2"
    both = await client.ask("echo", "echo", {}, target=["e1", "e3"])
    assert {name: entry["result"]["answered_by"] for name, entry in both.items()} == {
        "e1": "e1", "e3": "e3"}


@pytest_twisted.ensureDeferred
async def test_unknown_service_differs_from_no_workers_across_dispatchers(network):
    echo = await network["B"].add(Echo("echo-b"))
    await network.reaches("echo-b")
    client = await network["A"].client()
    with pytest.raises(ActornetError) as unknown:
        await client.ask("nobody-ever", "x", {})
    assert unknown.value.status == Status.UNKNOWN_SERVICE
    await network["B"].services["echo-b"].stopService()
    await network.forgotten(echo.name)
    with pytest.raises(ActornetError) as none_now:
        await client.ask("echo", "echo", {})
    assert none_now.value.status == Status.NO_WORKERS


@pytest_twisted.ensureDeferred
async def test_a_forward_across_dispatchers_answers_the_original_asker(network):
    await network["B"].add(Forwarder("forwarder"))
    await network["A"].add(Echo("echo-a"))
    await network.reaches("forwarder")
    await network.reaches("echo-a")
    client = await network["A"].client("asker")
    answer = await client.ask("relay", "relay", {"x": 3})
    assert answer["answered_by"] == "echo-a" and answer["x"] == 3
    assert {"A", "B", "forwarder", "echo-a"} <= set(hop_names(answer))


@pytest_twisted.ensureDeferred
async def test_events_and_the_death_watch_reach_subscribers_on_every_dispatcher(network):
    events = await network["A"].listen("news")
    deaths = await network["A"].listen(LIFECYCLE_TOPIC)
    publisher = await network["B"].add(Actor("publisher"))
    publisher.publish("news", {"headline": "federated"})
    await network.wait_for(lambda: events, what="the event at A")
    assert events[0]["headline"] == "federated"
    await network["B"].add(Echo("doomed"))
    await network["B"].kill("doomed")
    await network.wait_for(lambda: any(e.get("event") == "died" for e in deaths),
                           what="the death at A")
    died = next(e for e in deaths if e.get("event") == "died")
    assert died["name"] == "doomed" and died["dispatcher"] == "B"


@pytest_twisted.ensureDeferred
async def test_a_name_held_on_one_dispatcher_is_name_taken_on_another(network):
    await network["A"].add(Echo("unique"))
    await network.reaches("unique")
    with pytest.raises(ActornetError) as taken:
        await network["B"].client("unique")
    assert taken.value.status == Status.NAME_TAKEN
    assert "dispatcher A" in str(taken.value)


@pytest_twisted.ensureDeferred
async def test_management_lists_the_dispatchers_and_every_actor_with_its_dispatcher(network):
    await network["A"].add(Echo("echo-a"))
    await network["B"].add(Echo("echo-b"))
    await network.reaches("echo-b")
    await network.reaches("echo-a")
    client = await network["A"].client()
    dispatchers = await client.ask("mmi", "dispatchers", {})
    assert [row["name"] for row in dispatchers["dispatchers"]] == ["A", "B"]
    assert dispatchers["connected"] is True
    assert dispatchers["dispatchers"][1]["actors"] == 1
    actors = (await client.ask("mmi", "show_actors", {}))["actors"]
    assert {(row["name"], row["dispatcher"]) for row in actors} == {
        ("echo-a", "A"), ("echo-b", "B")}


@pytest_twisted.ensureDeferred
async def test_a_deadline_travels_with_the_request_and_the_asker_gets_one_timeout(network):
    stall = await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    with pytest.raises(ActornetError) as late:
        await client.ask("stall", "wait", {}, timeout=0.3)
    assert late.value.status == Status.TIMEOUT
    await network.wait_for(lambda: network.in_flight() == {"A": 0, "B": 0},
                           what="empty in-flight tables")
    assert len(stall.waiting) == 1


@pytest_twisted.ensureDeferred
async def test_an_actor_fails_over_to_another_dispatcher_under_its_name_and_keeps_state(
        network):
    """B dies: its actor, given both dispatchers' endpoints, registers under its name
    with A once B's claim on the name is freed (within a holdtime), and counts on."""
    from twisted.internet import reactor

    actor = Counter("counter", clock=reactor)
    service = ActorService(actor, endpoint_for(reactor, [network["B"].endpoint,
                                                         network["A"].endpoint]),
                           reactor, retry_policy=lambda attempt: 0.05)
    service.startService()
    try:
        await network.reaches("counter")
        client = await network["A"].client()
        assert (await client.ask("count", "count"))["calls"] == 1
        await network.crash("B")
        await network["A"].registered("counter", timeout=10)
        assert (await client.ask("count", "count"))["calls"] == 2
        assert network["A"].dispatcher.registry.by_name["counter"].via is not None
        assert "counter" in {row["name"] for row in (
            await client.ask("mmi", "show_actors", {"name": "counter"}))["actors"]}
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_dispatcher_cut_from_nats_serves_its_star_and_rejoins_by_itself(network):
    await network["A"].add(Echo("echo-a"))
    await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    network.cut("A")
    await network.wait_for(lambda: not network["A"].federation.remotes, what="A cut off")
    with pytest.raises(ActornetError) as down:
        await client.ask("stall", "wait", {})
    assert down.value.status == Status.FEDERATION_DOWN
    assert "NATS link is down" in str(down.value)
    assert (await client.ask("echo", "echo", {"x": 4}))["answered_by"] == "echo-a"
    status = await client.ask("mmi", "dispatchers", {})
    assert status["connected"] is False and [r["name"] for r in status["dispatchers"]] == ["A"]
    network.heal("A")
    await network.reaches("stall-b")
    asked = client.ask("stall", "wait", {})
    stall = network["B"].services["stall-b"].actor
    await network.wait_for(lambda: stall.waiting, what="the ask to reach B again")
    stall.waiting[0].callback({"back": True})
    assert (await asked)["back"] is True


@pytest_twisted.ensureDeferred
async def test_requests_in_flight_on_a_crashed_dispatcher_fail_actor_lost_once(network):
    await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    asked = [client.ask("stall", "wait", {}, timeout=10) for _ in range(3)]
    stall = network["B"].services["stall-b"].actor
    await network.wait_for(lambda: len(stall.waiting) == 3, what="three asks at B")
    await network.crash("B")
    for ask in asked:
        with pytest.raises(ActornetError) as lost:
            await ask
        assert lost.value.status == Status.ACTOR_LOST
        assert "dispatcher B was lost" in str(lost.value)
    assert network.in_flight()["A"] == 0


TRIAL_MODULE = '''
from twisted.trial.unittest import TestCase

from actornet import Actor, handler
from actornet.testing import ClusterTestMixin


class Echo(Actor):
    services = ("echo",)

    @handler
    def echo(self, bag):
        return {"by": self.name}


class FederationTests(ClusterTestMixin, TestCase):
    async def test_a_call_crosses_dispatchers(self):
        network = await self.start_federation(["A", "B"])
        await network["B"].add(Echo("echo-b"))
        await network.reaches("echo-b")
        client = await network["A"].client()
        self.assertEqual((await client.ask("echo", "echo"))["by"], "echo-b")
'''


def test_trial_tests_run_federations_that_leave_the_reactor_clean(tmp_path):
    """``start_federation`` under ``trial --reactor=asyncio``: the call crosses NATS and
    trial finds no timer, connection or process left behind."""
    import subprocess
    import sys

    (tmp_path / "test_federation_trial.py").write_text(TRIAL_MODULE)
    done = subprocess.run([sys.executable, "-m", "twisted.trial", "--reactor=asyncio",
                           "test_federation_trial"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=1)" in done.stdout


@pytest_twisted.ensureDeferred
async def test_the_pytest_fixture_starts_a_federation(actornet_federation):
    network = await actornet_federation(["A", "B", "C"])
    await network["C"].add(Echo("echo-c"))
    await network.reaches("echo-c")
    client = await network["A"].client()
    assert (await client.ask("echo", "echo", {}))["answered_by"] == "echo-c"


@pytest_twisted.ensureDeferred
async def test_an_actor_dying_on_b_fails_the_ask_made_at_a_with_actor_lost(network):
    stall = await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    asked = client.ask("stall", "wait", {}, timeout=10)
    await network.wait_for(lambda: stall.waiting, what="the ask at B")
    await network["B"].kill("stall-b")
    with pytest.raises(ActornetError) as lost:
        await asked
    assert lost.value.status == Status.ACTOR_LOST and "stall-b" in str(lost.value)
    await network.wait_for(lambda: network.in_flight() == {"A": 0, "B": 0},
                           what="empty in-flight tables")


@pytest_twisted.ensureDeferred
async def test_an_idempotent_ask_held_by_a_dead_dispatcher_goes_once_to_another_actor(
        network):
    stall_b = await network["B"].add(Stall("stall-b"))
    await network.reaches("stall-b")
    client = await network["A"].client()
    asked = client.ask("stall", "wait", {}, timeout=10, idempotent=True)
    await network.wait_for(lambda: stall_b.waiting, what="the ask at B")
    stall_a = await network["A"].add(Stall("stall-a"))
    await network.crash("B")
    await network.wait_for(lambda: stall_a.waiting, what="the retry at A")
    stall_a.waiting[0].callback({"by": "a"})
    assert (await asked)["by"] == "a"
    assert network["A"].dispatcher.stats["retried"] == 1


@pytest_twisted.ensureDeferred
async def test_metrics_say_whether_nats_is_reached_and_how_many_dispatchers_are_heard(
        network):
    import urllib.request

    from twisted.internet.threads import deferToThread

    def metrics(base):
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            return response.read().decode()

    base = await network["A"].monitoring()
    text = await deferToThread(metrics, base)
    assert "actornet_federation_connected 1.0" in text
    assert "actornet_federation_dispatchers 1.0" in text
    network.cut("A")
    await network.wait_for(lambda: not network["A"].federation.remotes, what="A cut off")
    text = await deferToThread(metrics, base)
    assert "actornet_federation_connected 0.0" in text
    assert "actornet_federation_dispatchers 0.0" in text


@pytest_twisted.ensureDeferred
async def test_dispatchers_present_the_nats_token_and_a_wrong_one_is_named(
        actornet_federation):
    """A NATS cluster with a token: the dispatchers join with it; one configured with
    another token stays out, serving its own star, saying why."""
    from actornet.federation_config import FederationConfig
    from actornet.testing import Cluster

    network = await actornet_federation(["A", "B"], token="s3cret")
    await network["B"].add(Echo("echo-b"))
    await network.reaches("echo-b")
    client = await network["A"].client()
    assert (await client.ask("echo", "echo", {}))["answered_by"] == "echo-b"
    wrong = Cluster(name="C", federation=FederationConfig(tuple(network.nats.urls), "kit",
                                                           token="wrong"))
    started = Deferred.fromCoroutine(wrong.start())
    try:
        await network.wait_for(lambda: wrong.dispatcher is not None and
                               "Authorization Violation" in str(
                                   wrong.dispatcher.registry.federation_down),
                               what="C's federation to say why it is down")
        assert "C" not in network["A"].federation.remotes
    finally:
        started.cancel()
        await wrong.leave_federation()
        await wrong.dispatcher.stop()
        if wrong.port is not None:
            await wrong.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_dispatchers_reach_a_tls_nats_server_the_urls_name(tmp_path):
    """``tls://`` servers and ``tls_ca`` in [federation]: the dispatchers verify the
    NATS server's certificate and federate through it."""
    import subprocess

    from test_federation_twistd import BIN, free_port
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from actornet import certs
    from actornet.federation_config import read_federation
    from actornet.testing import Cluster

    ca = certs.init(tmp_path / "pki")
    certificate, key = certs.issue(tmp_path / "pki", "nats", servers=["127.0.0.1"])
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "nats-server"), "--addr", "127.0.0.1", "--port", str(port), "--jetstream",
         "--store_dir", str(tmp_path / "js"), "--tls", "--tlscert", str(certificate),
         "--tlskey", str(key)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    clusters = []
    try:
        for line in server.stdout:
            if "Server is ready" in line:
                break
        for name in ("A", "B"):
            config = read_federation(
                "test.toml", {"servers": [f"tls://127.0.0.1:{port}"], "network": "tls",
                              "tls_ca": str(ca)}, name)
            clusters.append(await Cluster(name=name, federation=config,
                                          keepalive_interval=0.2).start())
        a, b = clusters
        await b.add(Echo("echo-b"))
        deadline = reactor.seconds() + 10
        while "echo-b" not in a.dispatcher.registry.by_name:
            assert reactor.seconds() < deadline, "A never learnt of echo-b over TLS"
            await deferLater(reactor, 0.02, lambda: None)
        client = await a.client()
        assert (await client.ask("echo", "echo", {}))["answered_by"] == "echo-b"
    finally:
        for cluster in clusters:
            await cluster.stop()
        server.kill()
        server.wait()


@pytest_twisted.ensureDeferred
async def test_progress_and_cancel_cross_dispatchers(network):
    """An asker on A hears the progress of a handler on B, in order before the answer,
    and cancelling a second ask cancels its handler on B; both tables empty."""
    reporter = await network["B"].add(Reporter("reporter"))
    await network.reaches("reporter")
    client = await network["A"].client()
    seen = []
    answer = client.ask("report", "later", on_progress=lambda bag: seen.append(
        (bag.sender, bag["done"])))
    await network.wait_for(lambda: reporter.gates, what="the job to start")
    reporter.gates.pop().callback(None)
    assert (await answer) == {"finished": True}
    assert seen == [("reporter", 0), ("reporter", 1)]
    cancelled = client.ask("report", "slow")
    await network.wait_for(lambda: reporter.gates, what="the second job to start")
    cancelled.cancel()
    with pytest.raises(Cancelled):
        await cancelled
    await network.wait_for(lambda: "slow finally" in reporter.ended,
                           what="the handler on B to be cancelled")
    assert reporter.ended == ["slow saw CancelledError", "slow finally"]
    await network.wait_for(lambda: all(len(network[name].dispatcher.inflight) == 0
                                       for name in ("A", "B"))
                           and reporter.context.session.handling == 0,
                           what="both tables to empty")
