"""The management service, the keepalive actor, metrics and status, on loopback."""

import json

import pytest
import pytest_twisted
from sample_actors import Echo, Stage, Stall
from test_metrics import sample
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, readBody

from actornet import ActornetError, Status
from actornet.actors.keepalive import Keepalive
from actornet.protocols.codes import LIFECYCLE_TOPIC
from actornet.testing import Cluster

pytestmark = pytest.mark.timeout(20)


async def get(url):
    """GET ``url`` over real HTTP; returns (status code, body text)."""
    response = await Agent(reactor).request(b"GET", url.encode())
    return response.code, (await readBody(response)).decode()


@pytest_twisted.ensureDeferred
async def test_mmi_shows_actors_dispatcher_and_versions(cluster):
    """mmi answers show_actors, show_dispatcher and versions from the dispatcher alone."""
    await cluster.add(Echo("echo-1"))
    client = await cluster.client()
    actors = (await client.ask("mmi", "show_actors"))["actors"]
    assert [(row["name"], row["services"], row["status"]) for row in actors] == [
        ("echo-1", ["echo"], "alive")]
    assert actors[0]["holdtime_left"] > 0
    dispatcher = await client.ask("mmi", "show_dispatcher")
    assert dispatcher["services"] == {"echo": ["echo-1"]}
    assert dispatcher["keepalive"] == {"interval": 5.0, "multiplier": 3}
    versions = await client.ask("mmi", "versions")
    assert set(versions) == {"actornet", "twisted", "cbor2", "python", "platform"}
    with pytest.raises(ActornetError) as raised:
        await client.ask("mmi", "reboot")
    assert raised.value.status == Status.UNKNOWN_METHOD


@pytest_twisted.ensureDeferred
async def test_shutdown_needs_the_token():
    """mmi.shutdown without the token is refused; with it, the shutdown hook runs."""
    stopped = Deferred()
    cluster = await Cluster(token="tok", on_shutdown=lambda: stopped.callback("stopped")).start()
    try:
        client = await cluster.client()
        with pytest.raises(ActornetError) as raised:
            await client.ask("mmi", "shutdown", {"token": "nope"})
        assert raised.value.status == Status.UNAUTHORIZED
        assert await client.ask("mmi", "shutdown", {"token": "tok"}) == {"stopping": True}
        assert await stopped == "stopped"
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_keepalive_show_lists_dead_actors_and_filters(cluster):
    """keepalive.show lists the living and the dead, filtered by service and status."""
    await cluster.add(Keepalive("keepalive"))
    await cluster.add(Echo("echo-1"))
    await cluster.add(Stall("stall-1"))
    client = await cluster.client()
    await cluster.kill("stall-1")
    await cluster.wait_for(lambda: "stall-1" in cluster.services["keepalive"].actor.departed)
    everyone = (await client.ask("keepalive", "show"))["actors"]
    assert {(row["name"], row["status"]) for row in everyone} == {
        ("keepalive", "alive"), ("echo-1", "alive"), ("stall-1", "dead")}
    dead = (await client.ask("keepalive", "show", {"status": "dead"}))["actors"]
    assert [(row["name"], row["event"]) for row in dead] == [("stall-1", "died")]
    echo = (await client.ask("keepalive", "show", {"service": "echo"}))["actors"]
    assert [row["name"] for row in echo] == ["echo-1"]
    assert {row["name"]: row["in_flight"] for row in everyone if row["status"] == "alive"} == {
        "keepalive": 0, "echo-1": 0}, "the show request itself is not work in flight"


@pytest_twisted.ensureDeferred
async def test_death_watch_hears_joined_and_died(cluster):
    """A subscriber to the lifecycle topic hears an actor join, then die when cut off."""
    watcher = await cluster.client("watcher")
    heard = []
    watcher.subscribe(LIFECYCLE_TOPIC, lambda bag: heard.append((bag["event"], bag["name"])))
    await cluster.wait_for(lambda: LIFECYCLE_TOPIC in cluster.snapshot().subscriptions)
    await cluster.add(Echo("echo-1"))
    await cluster.cut("echo-1")
    await cluster.wait_for(lambda: ("died", "echo-1") in heard, what="the death event")
    await cluster.registered("echo-1")
    await cluster.wait_for(lambda: heard.count(("joined", "echo-1")) == 2)
    assert heard == [("joined", "echo-1"), ("died", "echo-1"), ("joined", "echo-1")]


@pytest_twisted.ensureDeferred
async def test_metrics_count_exactly_the_requests_made(cluster):
    """/metrics counts 7 answered asks, 2 failures and 1 unknown service (under
    ``(unknown)``, not the name asked for), no more."""
    await cluster.add(Echo("echo-1"))
    client = await cluster.client()
    for n in range(7):
        await client.ask("echo", "echo", {"n": n})
    for _ in range(2):
        await client.ask("echo", "fail").addErrback(lambda f: None)
    await client.ask("nosuch", "m").addErrback(lambda f: None)
    base = await cluster.monitoring()
    code, text = await get(base + "/metrics")
    assert code == 200
    assert sample(text, "actornet_requests_total", service="echo", actor="echo-1",
                  status=200) == 7
    assert sample(text, "actornet_requests_total", service="echo", actor="echo-1",
                  status=500) == 2
    assert sample(text, "actornet_requests_total", service="(unknown)", actor="",
                  status=404) == 1
    assert "nosuch" not in text
    assert sample(text, "actornet_request_seconds_count", service="echo", actor="echo-1") == 9
    assert sample(text, "actornet_actor_bytes_total", actor="echo-1", direction="in") > 0
    assert sample(text, "actornet_errors_total", error="KeyError") == 2
    assert sample(text, "actornet_errors_total", error="unknown_service") == 1
    assert sample(text, "actornet_asker_requests_total", asker=client.name) == 10


@pytest_twisted.ensureDeferred
async def test_a_forwarded_request_is_counted_for_the_service_that_received_it(cluster):
    """A pipeline's first service shows up in /metrics as ``forwarded``, the last as 200."""
    await cluster.add(Stage("intake", services=["billing"], options={"next": "insurance"}))
    await cluster.add(Stage("insurer", services=["insurance"]))
    client = await cluster.client()
    for _ in range(3):
        assert (await client.ask("billing", "step"))["stages"] == ["intake", "insurer"]
    code, text = await get(await cluster.monitoring() + "/metrics")
    assert sample(text, "actornet_requests_total", service="billing", actor="intake",
                  status="forwarded") == 3
    assert sample(text, "actornet_requests_total", service="insurance", actor="insurer",
                  status=200) == 3


@pytest_twisted.ensureDeferred
async def test_the_monitoring_port_says_what_it_serves(cluster):
    """GET / on the monitoring port lists /metrics and /status."""
    code, text = await get(await cluster.monitoring() + "/")
    assert code == 200
    assert "/metrics" in text and "/status" in text


@pytest_twisted.ensureDeferred
async def test_status_answers_while_every_actor_is_busy(cluster):
    """GET /status answers at once while slow handlers hold every actor busy."""
    await cluster.add(Stall("stall-1"))
    await cluster.add(Stall("stall-2"))
    client = await cluster.client()
    held = [client.ask("stall", "wait", timeout=30) for _ in range(6)]
    stalls = [cluster.services[name].actor for name in ("stall-1", "stall-2")]
    await cluster.wait_for(lambda: sum(len(s.waiting) for s in stalls) == 6)
    base = await cluster.monitoring()
    started = reactor.seconds()
    code, text = await get(base + "/status")
    assert code == 200 and reactor.seconds() - started < 1.0
    status = json.loads(text)
    assert (status["status"], status["in_flight"], status["actors"]) == ("ok", 6, 2)
    for stall in stalls:
        for answer in stall.waiting:
            answer.callback({})
    for ask in held:
        await ask


@pytest_twisted.ensureDeferred
async def test_an_actor_that_stops_cleanly_is_reported_as_left(cluster):
    """Stopping an actor's service says DISCONNECT, so watchers hear "left", not "died"."""
    await cluster.add(Keepalive("keepalive"))
    await cluster.add(Echo("echo-1"))
    await cluster.services.pop("echo-1").stopService()
    departed = cluster.services["keepalive"].actor.departed
    await cluster.wait_for(lambda: "echo-1" in departed)
    assert departed["echo-1"]["event"] == "left"
    assert departed["echo-1"]["reason"] == "it said DISCONNECT"
