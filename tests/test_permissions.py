"""Identities in running networks: per-identity tokens in the cluster kit, and client
certificates over real TLS with ``twistd`` processes and the ``actornet`` CLI."""

import re
import shutil
import time
from pathlib import Path

import pytest
import pytest_twisted
from sample_actors import Echo
from test_twistd import EXAMPLES, cli, start_twistd, stop

from actornet import Unauthorized, connect
from actornet.certs import init, issue
from actornet.dispatcher.identity import Identity
from actornet.testing import Cluster

pytestmark = pytest.mark.timeout(60)

ECHOERS = Identity("echoers", register=("echo-*",), serve=("echo",), token="echo-secret")
ASKERS = Identity("askers", register=("client-*",), ask=("echo",), token="ask-secret")
MALLORY = Identity("mallory", register=("client-*", "mallory-*"), serve=("*",),
                   token="mallory-secret")


@pytest_twisted.ensureDeferred
async def test_per_identity_tokens_admit_and_refuse_in_the_kit(cluster_mode):
    """An identity's token admits its actor; mallory may not take echo-1, even once it is gone."""
    cluster = await Cluster(mode=cluster_mode, identities=(ECHOERS, ASKERS, MALLORY)).start()
    try:
        await cluster.add(Echo("echo-1"), token="echo-secret")
        asker = await cluster.client(token="ask-secret")
        assert (await asker.ask("echo", "echo", {"n": 1}))["answered_by"] == "echo-1"
        assert cluster.dispatcher.registry.by_name["echo-1"].identity == ECHOERS
        with pytest.raises(Unauthorized, match="identity 'mallory' may not register the name "
                                               "'echo-1'"):
            await cluster.client(name="echo-1", token="mallory-secret")
        await cluster.kill("echo-1")
        with pytest.raises(Unauthorized, match="may not register the name 'echo-1'"):
            await cluster.client(name="echo-1", token="mallory-secret")
        with pytest.raises(Unauthorized, match="a client certificate or a token is required"):
            await cluster.client(token="")
        assert cluster.dispatcher.stats["forbidden"] == 2
        assert cluster.dispatcher.stats["unauthorized"] == 1
    finally:
        await cluster.stop()


DISPATCHER_CONFIG = '''
[dispatcher]
listen = "tcp:0:interface=127.0.0.1"
connection_file = false

[dispatcher.tls]
listen = "tcp:0:interface=127.0.0.1"
certificate = "certs/dispatcher.pem"
key = "certs/dispatcher.key"
ca = "certs/ca/ca.pem"

[identities.alice]
register = "math-*"
serve = "math"

[identities.bob]
register = "client-*"
ask = "math"

[identities.mallory]
register = ["client-*", "mallory-*"]
serve = "*"
'''

ACTOR_CONFIG = '''
[join]
connect = "{connect}"

[[actor]]
class = "mathserver:MathServer"
name = "math"
instances = 2
'''


class TLSNetwork:
    """A twistd dispatcher requiring client certificates, and alice's math actors
    (math-1, math-2) joined over TLS from a second twistd."""

    def __init__(self, folder):
        self.folder = folder
        init(folder / "certs")
        issue(folder / "certs", "dispatcher", ["127.0.0.1"])
        for name in ("alice", "bob", "mallory"):
            issue(folder / "certs", name)
        init(folder / "other")
        issue(folder / "other", "bob")
        shutil.copy(EXAMPLES / "mathserver.py", folder)
        (folder / "dispatcher.toml").write_text(DISPATCHER_CONFIG)
        self.dispatcher = start_twistd(folder / "dispatcher.toml", folder)
        splash = self.dispatcher.output.wait_for("connect with tcp:")
        self.plain = re.search(r"connect with (\S+)", splash).group(1)
        tls_line = self.dispatcher.output.wait_for("actornet: TLS on")
        self.port = int(re.search(r"port=(\d+)", tls_line).group(1))
        (folder / "alice.toml").write_text(ACTOR_CONFIG.format(connect=self.endpoint("alice")))
        self.actors = start_twistd(folder / "alice.toml", folder)
        self.dispatcher.output.wait_for("actor math-1 joined")
        self.dispatcher.output.wait_for("actor math-2 joined")

    def endpoint(self, name=None, authority="certs"):
        """A tls: client endpoint trusting this network's CA, with ``name``'s
        certificate from the ``authority`` folder (none when ``name`` is None)."""
        description = f"tls:127.0.0.1:{self.port}:trustRoots={self.folder / 'certs' / 'ca'}"
        if name is not None:
            where = Path(self.folder / authority)
            description += f":certificate={where / name}.pem:privateKey={where / name}.key"
        return description

    def call(self, connect, *extra):
        return cli("call", "math", "add", "--data", '{"a": 50, "b": 49}', "--connect", connect,
                   *extra)

    def stop(self):
        stop(self.dispatcher)
        stop(self.actors)


@pytest.fixture(scope="module")
def tls_network(tmp_path_factory):
    """One TLS network for this module's tests, none of which changes it."""
    network = TLSNetwork(tmp_path_factory.mktemp("tls"))
    yield network
    network.stop()


def test_an_actor_joined_over_tls_answers_a_call_made_with_another_identity(tls_network):
    """alice's math actors joined with her certificate answer bob's `actornet call` over TLS."""
    done = tls_network.call(tls_network.endpoint("bob"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"result": 99}'


@pytest_twisted.ensureDeferred
async def test_an_identity_may_not_take_a_name_it_is_not_allowed(tls_network):
    """mallory's certificate cannot register math-1; the real math-1 keeps answering."""
    mallory = tls_network.endpoint("mallory")
    with pytest.raises(Unauthorized) as refused:
        await connect(mallory, name="math-1")
    assert str(refused.value) == (f"unauthorized: {mallory}: the dispatcher refused math-1: "
                                  "identity 'mallory' may not register the name 'math-1'")
    line = tls_network.dispatcher.output.wait_for("may not register the name 'math-1'")
    assert re.search(r"closing connection \d+: unauthorized: identity 'mallory' may not "
                     r"register the name 'math-1'$", line.rstrip())
    done = tls_network.call(tls_network.endpoint("bob"), "--target", "math-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"result": 99}'


def test_a_peer_without_a_certificate_of_this_network_cannot_register(tls_network):
    """No certificate, or one from another CA, fails the handshake; plain TCP needs a token."""
    for connect_with in (tls_network.endpoint(), tls_network.endpoint("bob", "other")):
        done = tls_network.call(connect_with)
        assert done.returncode == 1
        assert "connection to the dispatcher closed before registration" in done.stderr
    done = tls_network.call(tls_network.plain)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("a client certificate or a token is required")


def test_a_dispatcher_stops_at_once_with_peers_connected_over_tls(tmp_path):
    """SIGTERM closes TLS peers' connections at once instead of waiting out their keepalives."""
    network = TLSNetwork(tmp_path)
    try:
        started = time.monotonic()
        stop(network.dispatcher)
        assert time.monotonic() - started < 5
        network.dispatcher.output.wait_for("Server Shut Down.")
    finally:
        network.stop()
