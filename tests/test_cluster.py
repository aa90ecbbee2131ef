"""Integration tests on loopback: a real dispatcher, real actors, real sockets."""

import re
import time

import pytest
import pytest_twisted
from sample_actors import Echo, Relay, Stage, Stall

from actornet import (
    ActorLost,
    DownstreamTimeout,
    NoWorkers,
    ProtocolError,
    RemoteError,
    RequestTimeout,
    Status,
    Unauthorized,
)
from actornet.testing import Cluster

pytestmark = pytest.mark.timeout(20)


@pytest_twisted.ensureDeferred
async def test_any_target_balances_over_least_busy_workers(cluster):
    """Two concurrent asks to a service of two idle actors land on different actors."""
    await cluster.add(Stall("stall-1"))
    await cluster.add(Stall("stall-2"))
    client = await cluster.client()
    first = client.ask("stall", "wait")
    second = client.ask("stall", "wait")
    stalls = [cluster.services[name].actor for name in ("stall-1", "stall-2")]
    await cluster.wait_for(lambda: all(len(stall.waiting) == 1 for stall in stalls))
    for stall in stalls:
        stall.waiting[0].callback({"from": stall.name})
    answers = {(await first)["from"], (await second)["from"]}
    assert answers == {"stall-1", "stall-2"}


@pytest_twisted.ensureDeferred
async def test_all_target_combines_answers_keyed_by_actor(cluster):
    """An ask to ``all`` gets one answer holding every actor's result."""
    for name in ("echo-1", "echo-2", "echo-3"):
        await cluster.add(Echo(name))
    client = await cluster.client()
    answer = await client.ask("echo", "echo", {"x": 7}, target="all")
    assert sorted(answer) == ["echo-1", "echo-2", "echo-3"]
    for name, entry in answer.items():
        assert entry["status"] == Status.SUCCESS
        assert entry["result"] == {"x": 7, "answered_by": name}


@pytest_twisted.ensureDeferred
async def test_all_target_keeps_per_actor_errors(cluster):
    """A failing handler under ``all`` shows up as that actor's error entry."""
    await cluster.add(Echo("echo-1"))
    await cluster.add(Echo("echo-2"))
    client = await cluster.client()
    answer = await client.ask("echo", "fail", {"key": "k"}, target="all")
    assert answer["echo-1"]["status"] == Status.FAILURE
    assert answer["echo-2"]["error"] == {"type": "KeyError", "message": "'k'"}


@pytest_twisted.ensureDeferred
async def test_named_and_listed_targets_reach_exactly_those_actors(cluster):
    """A name targets one actor; a list targets each listed actor."""
    for name in ("echo-1", "echo-2", "echo-3"):
        await cluster.add(Echo(name))
    client = await cluster.client()
    for _ in range(4):
        answer = await client.ask("echo", "echo", target="echo-2")
        assert answer["answered_by"] == "echo-2"
    answer = await client.ask("echo", "echo", target=["echo-1", "echo-3"])
    assert sorted(answer) == ["echo-1", "echo-3"]


@pytest_twisted.ensureDeferred
async def test_no_workers_answers_at_once(cluster):
    """A service whose only actor left answers NO_WORKERS without waiting."""
    await cluster.add(Echo("echo-1"))
    await cluster.kill("echo-1")
    client = await cluster.client()
    started = time.monotonic()
    with pytest.raises(NoWorkers):
        await client.ask("echo", "echo", timeout=10)
    assert time.monotonic() - started < 1.0


@pytest_twisted.ensureDeferred
async def test_remote_error_carries_type_and_message(cluster):
    """An exception in a handler reaches the asker with its type and message."""
    await cluster.add(Echo("echo-1"))
    client = await cluster.client()
    with pytest.raises(RemoteError) as raised:
        await client.ask("echo", "fail", {"key": "gone"})
    assert raised.value.remote_type == "KeyError"
    assert raised.value.message == "'gone'"


@pytest_twisted.ensureDeferred
async def test_forward_through_three_actors_answers_the_original_asker(cluster):
    """A pipeline of three forwarding actors answers the asker with an 8-stamp route."""
    await cluster.add(Stage("intake", services=["intake"], options={"next": "check"}))
    await cluster.add(Stage("check", services=["check"], options={"next": "lookup"}))
    await cluster.add(Stage("lookup", services=["lookup"]))
    client = await cluster.client("asker")
    answer = await client.ask("intake", "step", {"claim": 1})
    assert answer["stages"] == ["intake", "check", "lookup"]
    names = [stamp.name for stamp in answer.route]
    assert names == ["asker", "dispatcher", "intake", "dispatcher", "check", "dispatcher",
                     "lookup", "dispatcher"]
    assert [stamp.hop for stamp in answer.route] == list(range(1, 9))
    assert answer.visited("check") and not answer.visited("elsewhere")
    assert len(cluster.dispatcher.inflight) == 0


@pytest_twisted.ensureDeferred
async def test_actor_lost_mid_request_fails_the_ask_within_a_second(cluster):
    """Killing the actor that holds a request fails its asker with ACTOR_LOST at once."""
    await cluster.add(Stall("stall-1"))
    client = await cluster.client()
    pending = client.ask("stall", "wait", timeout=30)
    await cluster.wait_for(lambda: cluster.peer("stall-1").in_flight == 1)
    started = time.monotonic()
    await cluster.kill("stall-1")
    with pytest.raises(ActorLost) as raised:
        await pending
    assert time.monotonic() - started < 1.0
    assert "stall-1" in raised.value.message
    assert len(cluster.dispatcher.inflight) == 0


@pytest_twisted.ensureDeferred
async def test_actors_reconnect_after_a_dispatcher_restart(cluster):
    """After the dispatcher restarts, actors register again and keep their state."""
    echo = await cluster.add(Echo("echo-1"))
    echo.memory = "kept"
    await cluster.restart_dispatcher()
    await cluster.registered("echo-1")
    client = await cluster.client()
    answer = await client.ask("echo", "echo", {"n": 1})
    assert answer["answered_by"] == "echo-1"
    assert echo.memory == "kept"


@pytest_twisted.ensureDeferred
async def test_pending_asks_fail_when_the_dispatcher_goes_away(cluster):
    """An asker whose dispatcher vanishes gets ACTOR_LOST, not silence."""
    await cluster.add(Stall("stall-1"))
    client = await cluster.client()
    pending = client.ask("stall", "wait", timeout=30)
    await cluster.wait_for(lambda: cluster.peer("stall-1").in_flight == 1)
    await cluster.restart_dispatcher()
    with pytest.raises(ActorLost):
        await pending


@pytest_twisted.ensureDeferred
async def test_missing_or_wrong_token_is_refused():
    """With a token set, a client without it or with a wrong one is refused."""
    cluster = await Cluster(token="s3cret").start()
    try:
        with pytest.raises(Unauthorized):
            await cluster.client(token="")
        with pytest.raises(Unauthorized):
            await cluster.client(token="wrong")
        client = await cluster.client()
        assert client.connected
        assert cluster.dispatcher.stats["unauthorized"] == 2
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_second_actor_with_a_taken_name_is_refused(cluster):
    """A second connection claiming a registered name is refused with NAME_TAKEN."""
    await cluster.add(Echo("echo-1"))
    with pytest.raises(Exception) as raised:
        await cluster.client(name="echo-1")
    assert raised.value.status == Status.NAME_TAKEN
    assert cluster.peer("echo-1").services == ("echo",)


@pytest_twisted.ensureDeferred
async def test_events_reach_every_subscriber(cluster):
    """publish() reaches each subscriber of the topic, with the publisher's stamp."""
    listener = await cluster.client("listener")
    heard = []
    listener.subscribe("news", heard.append)
    publisher = await cluster.client("publisher")
    await cluster.wait_for(lambda: "news" in cluster.snapshot().subscriptions)
    publisher.publish("news", {"headline": "hello"})
    answer_back = await publisher.ask("news-never-served", "x").addErrback(lambda f: f.value)
    assert answer_back.status == Status.UNKNOWN_SERVICE
    await listener.ask("news-never-served", "x").addErrback(lambda f: None)
    assert [dict(bag) for bag in heard] == [{"headline": "hello"}]
    assert heard[0].route[0].name == "publisher"


@pytest_twisted.ensureDeferred
async def test_a_frozen_actor_does_not_grow_the_dispatchers_memory():
    """Big asks to an actor that stopped reading pause their sender; the dispatcher's
    buffer for it stays bounded, every ask resolves once, and others are still served."""
    limit = 256 * 1024
    cluster = await Cluster(outbound_limit_bytes=limit).start()
    try:
        await cluster.add(Stall("stall-1"))
        await cluster.add(Echo("echo-1"))
        cluster.freeze("stall-1")
        flooder = await cluster.client("flooder")
        payload = {"blob": b"x" * 65536}
        outcomes = []
        asks = [flooder.ask("stall", "wait", payload, timeout=1.0).addBoth(outcomes.append)
                for _ in range(200)]
        await cluster.wait_for(lambda: cluster.dispatcher.stats["senders_paused"] >= 1)
        bystander = await cluster.client("bystander")
        assert (await bystander.ask("echo", "echo", {"n": 1}))["answered_by"] == "echo-1"
        for ask in asks:
            await ask
        assert len(outcomes) == 200
        stuck = cluster.peer("stall-1")
        assert stuck.congested
        assert stuck.backlog <= limit + 2 * 65600
        assert {type(outcome.value) for outcome in outcomes} == {RequestTimeout}
    finally:
        cluster.thaw("stall-1")
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_a_request_over_the_frame_limit_fails_alone_before_it_is_sent(cluster_mode):
    """A body over the dispatcher's limit (announced in READY) fails that ask with
    TOO_LARGE naming both sizes; the client's other asks and its connection go on."""
    cluster = await Cluster(mode=cluster_mode, max_frame_bytes=64 * 1024).start()
    try:
        await cluster.add(Stall("stall-1"))
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        pending = client.ask("stall", "wait")
        await cluster.wait_for(lambda: cluster.services["stall-1"].actor.waiting)
        with pytest.raises(ProtocolError) as raised:
            await client.ask("echo", "echo", {"blob": b"x" * 100_000})
        assert raised.value.status == Status.TOO_LARGE
        assert re.fullmatch(r"a frame of 100\d\d\d bytes is over the limit of 61440 bytes",
                            raised.value.message)
        cluster.services["stall-1"].actor.waiting[0].callback({"done": True})
        assert await pending == {"done": True}
        assert (await client.ask("echo", "echo", {"n": 1}))["n"] == 1
        assert cluster.dispatcher.stats["too_large"] == 0
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_an_answer_over_the_frame_limit_reaches_the_asker_as_too_large(cluster_mode):
    """A handler whose answer is too large for a frame answers TOO_LARGE instead;
    the actor stays connected."""
    cluster = await Cluster(mode=cluster_mode, max_frame_bytes=64 * 1024).start()
    try:
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        with pytest.raises(ProtocolError) as raised:
            await client.ask("echo", "big", {"size": 100_000})
        assert raised.value.status == Status.TOO_LARGE
        assert raised.value.message.startswith("echo.big answered with a frame of ")
        assert (await client.ask("echo", "echo", {"n": 2}))["answered_by"] == "echo-1"
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_a_missing_field_names_the_field_and_the_handler(cluster):
    """Reading a field the request lacks fails with MissingField naming both."""
    await cluster.add(Relay("relay-1"))
    client = await cluster.client()
    with pytest.raises(RemoteError) as raised:
        await client.ask("relay", "greet", {"nam": "ada"})
    assert raised.value.remote_type == "MissingField"
    assert raised.value.message == (
        "relay.greet needs a field: no field 'name' in the bag (it has: nam)")


@pytest_twisted.ensureDeferred
async def test_a_timeout_downstream_is_told_apart_from_the_askers_own(cluster):
    """The actor asked timed out asking another: the asker gets DownstreamTimeout naming
    both requests, not a RequestTimeout of its own deadline."""
    await cluster.add(Stall("stall-1"))
    await cluster.add(Relay("relay-1", options={"service": "stall", "method": "wait"}))
    client = await cluster.client()
    with pytest.raises(DownstreamTimeout) as raised:
        await client.ask("relay", "pass_on", {"timeout": 0.5}, timeout=20)
    assert isinstance(raised.value, RequestTimeout)
    assert raised.value.status == Status.TIMEOUT
    assert raised.value.message == ("relay.pass_on timed out waiting for another service: "
                                    "no answer to stall.wait within 0.5s")
    with pytest.raises(RequestTimeout) as own:
        await client.ask("stall", "wait", timeout=0.5)
    assert not isinstance(own.value, DownstreamTimeout)


@pytest_twisted.ensureDeferred
async def test_a_slow_reader_never_freezes_the_actors_that_answer_it():
    """A client that asks for big answers and stops reading gets BUSY and is then
    disconnected as a slow consumer; the actor it asked goes on answering everyone
    else at its normal speed."""
    cluster = await Cluster(outbound_limit_bytes=512 * 1024, slow_consumer_seconds=1.0,
                            keepalive_interval=0.5).start()
    try:
        await cluster.add(Echo("echo-1"))
        bystander = await cluster.client("bystander")

        async def p50():
            times = []
            for n in range(20):
                started = time.monotonic()
                await bystander.ask("echo", "echo", {"n": n})
                times.append(time.monotonic() - started)
            return sorted(times)[10]

        normal = await p50()
        reader = await cluster.client("reader")
        cluster.freeze("reader")
        outcomes = []
        for _ in range(10):
            reader.ask("echo", "big", {"size": 4 * 1024 * 1024}, timeout=30).addBoth(
                outcomes.append)
        await cluster.wait_for(lambda: cluster.snapshot().counters.get("congestions"))
        during = await p50()
        await cluster.wait_for(lambda: "reader" not in cluster.snapshot().names, timeout=10)
        counters = cluster.snapshot().counters
        assert counters.get("slow_consumers") == 1
        assert counters.get("slow_reader_refused", 0) >= 1
        assert counters.get("senders_paused", 0) == 0
        assert during < 2 * normal + 0.02, (normal, during)
        cluster.thaw("reader")
        await cluster.wait_for(lambda: len(outcomes) == 10)
        assert {type(outcome.value) for outcome in outcomes} == {ActorLost}
    finally:
        await cluster.stop()
