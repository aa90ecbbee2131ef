"""Three hosts on one machine (network namespaces on a bridge): they reach each
other only through the network, and a NATS cluster routes across them."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import hosts as hosts_module
import nats
import pytest
import pytest_twisted
from hosts import Hosts, HostsError, unavailable_reason
from nats.errors import NoRespondersError
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

pytestmark = pytest.mark.timeout(30)

NATS_SERVER = str(Path(sys.executable).parent / "nats-server")
READY_TIMEOUT = 10

LISTEN = """
import selectors, socket, sys
chooser = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    address, port = spec.rsplit(":", 1)
    chooser.register(socket.create_server((address, int(port))), selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in chooser.select():
        connection, _ = key.fileobj.accept()
        connection.sendall(key.fileobj.getsockname()[0].encode())
        connection.close()
"""

REACH = """
import json, socket, sys
answers = []
for spec in sys.argv[1:]:
    address, port = spec.rsplit(":", 1)
    try:
        with socket.create_connection((address, int(port)), timeout=5) as connection:
            answers.append(connection.recv(100).decode())
    except OSError as error:
        answers.append(type(error).__name__)
print(json.dumps(answers))
"""


def links():
    """The names of the machine's network namespaces and of the root namespace's
    interfaces."""
    def ip(*args):
        return subprocess.run([hosts_module.IP, *args], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    namespaces = {line.split()[0] for line in ip("netns", "list")}
    interfaces = {line.split()[1].rstrip(":").split("@")[0] for line in ip("-o", "link", "show")}
    return namespaces, interfaces


@pytest.fixture
def hosts():
    """Three hosts, removed after the test; skips where namespaces are not allowed."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    made = Hosts(3, network=f"10.213.{os.getpid() % 250}.0/24")
    yield made
    made.close()


class Processes:
    """Processes a test starts, each logging to a file; all killed in teardown."""

    def __init__(self, directory):
        self.directory = directory
        self.running = {}

    def start(self, name, argv, **kwargs):
        log = (self.directory / f"{name}.log").open("w")
        self.running[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                              **kwargs)
        log.close()
        return self.running[name]

    def tail(self, name, lines=20):
        """The end of a process's log, for failure messages."""
        text = (self.directory / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill_all(self):
        for process in self.running.values():
            process.kill()
            process.wait()


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.kill_all()


def listen(hosts, processes, i, *specs):
    """Start a TCP listener in host ``i`` on ``address:port`` specs; each
    connection is answered with the address it arrived at."""
    name = f"listen-{i}"
    process = processes.start(name, hosts.command(i, [sys.executable, "-c", LISTEN, *specs]),
                              stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while "listening" not in processes.tail(name):
        if time.monotonic() > deadline:
            raise AssertionError(f"the listener in host {i} did not start:\n"
                                 f"{processes.tail(name)}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.02)
            raise AssertionError(f"the listener in host {i} exited:\n{processes.tail(name)}")


def reach(hosts, i, *specs):
    """What host ``i`` gets from connecting to each ``address:port``: the
    answering address, or the connection error's name."""
    done = subprocess.run(hosts.command(i, [sys.executable, "-c", REACH, *specs]),
                          capture_output=True, text=True, timeout=20, check=True)
    return json.loads(done.stdout)


def test_hosts_reach_each_other_but_not_each_others_loopback(hosts, processes):
    """Every host and the root namespace reach each host's address; a port bound
    to 127.0.0.1 in host 2 answers in host 2 only."""
    for i in (1, 2, 3):
        specs = [f"{hosts.address(i)}:7000"] + (["127.0.0.1:7001"] if i == 2 else [])
        listen(hosts, processes, i, *specs)
    everyone = [f"{hosts.address(j)}:7000" for j in (1, 2, 3)]
    addresses = [hosts.address(j) for j in (1, 2, 3)]
    for i in (1, 2, 3):
        assert reach(hosts, i, *everyone) == addresses
    assert reach(hosts, 1, "127.0.0.1:7001", f"{hosts.address(2)}:7001") == [
        "ConnectionRefusedError", "ConnectionRefusedError"]
    assert reach(hosts, 2, "127.0.0.1:7001") == ["127.0.0.1"]
    for j in (1, 2, 3):
        with socket.create_connection((hosts.address(j), 7000), timeout=5) as connection:
            assert connection.recv(100).decode() == hosts.address(j)


def start_nats_cluster(hosts, processes, jetstream=False):
    """One ``nats-server`` per host, on the host's own address, routed to all
    (with JetStream, storing under the processes' directory)."""
    routes = ",".join(f"nats://{hosts.address(j)}:6222" for j in (1, 2, 3))
    for i in (1, 2, 3):
        address = hosts.address(i)
        store = ["--jetstream", "--store_dir", str(processes.directory / f"js-{i}")]
        processes.start(f"nats-{i}", hosts.command(i, [
            NATS_SERVER, "--addr", address, "--port", "4222", "--http_port", "8222",
            "--server_name", f"host-{i}", "--cluster_name", "hosts",
            "--cluster", f"nats://{address}:6222", "--routes", routes,
            *(store if jetstream else [])]))


def get_json(url):
    with urllib.request.urlopen(url, timeout=1) as response:
        return json.load(response)


async def routed(hosts, processes, i):
    """Wait until host ``i``'s server, asked over HTTP through the bridge, has
    routes to the servers of both other hosts."""
    others = {f"host-{j}" for j in (1, 2, 3) if j != i}
    deadline = reactor.seconds() + READY_TIMEOUT
    seen = "no answer"
    while reactor.seconds() < deadline:
        try:
            routez = await deferToThread(get_json, f"http://{hosts.address(i)}:8222/routez")
        except OSError as error:
            seen = f"no answer ({error})"
        else:
            seen = sorted({route["remote_name"] for route in routez["routes"]})
            if set(seen) == others:
                return
        await deferLater(reactor, 0.05)
    raise AssertionError(f"host {i}'s nats-server has routes to {seen}, not {sorted(others)}, "
                         f"after {READY_TIMEOUT} s:\n{processes.tail(f'nats-{i}')}")


def on_asyncio(coroutine):
    """A Deferred for a coroutine that needs asyncio (nats-py) rather than Twisted."""
    return Deferred.fromFuture(asyncio.ensure_future(coroutine))


async def request_across(asking_url, answering_url):
    """Ask on ``hosts.ping`` through the server at ``asking_url``, answered by a
    subscriber of the server at ``answering_url``; the reply and both servers' URLs.
    Retries while the subscription is still on its way across the routes."""
    async with contextlib.AsyncExitStack() as connections:
        answering = await nats.connect(answering_url, allow_reconnect=False, connect_timeout=2)
        connections.push_async_callback(answering.close)
        asking = await nats.connect(asking_url, allow_reconnect=False, connect_timeout=2)
        connections.push_async_callback(asking.close)

        async def pong(message):
            await message.respond(b"pong: " + message.data)

        await answering.subscribe("hosts.ping", cb=pong)
        await answering.flush()
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while True:
            try:
                reply = await asking.request("hosts.ping", b"ping", timeout=2)
                break
            except NoRespondersError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)
        return reply.data, asking.connected_url.netloc, answering.connected_url.netloc


@pytest_twisted.ensureDeferred
async def test_nats_cluster_across_hosts_carries_a_request(hosts, processes):
    """Three nats-servers, one per host, form a routed cluster; a request through
    host 1's server is answered by a subscriber of host 3's."""
    start_nats_cluster(hosts, processes)
    for i in (1, 2, 3):
        await routed(hosts, processes, i)
    reply, asked, answered = await on_asyncio(request_across(
        f"nats://{hosts.address(1)}:4222", f"nats://{hosts.address(3)}:4222"))
    assert (reply, asked, answered) == (
        b"pong: ping", f"{hosts.address(1)}:4222", f"{hosts.address(3)}:4222")


class FailingIp:
    """Stands in for ``hosts._ip``: runs ``ip``, except that call number
    ``failing`` (counted from 1) fails."""

    def __init__(self, ip):
        self.ip = ip
        self.calls = []
        self.failing = None

    def __call__(self, *args):
        self.calls.append(args)
        if len(self.calls) == self.failing:
            raise HostsError(f"`ip {' '.join(args)}` failed: refused by the test")
        self.ip(*args)


def test_a_failure_while_creating_leaves_nothing_behind(monkeypatch):
    """Whichever ``ip`` command fails, the error quotes it and what was made is removed."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    before = links()
    ip = FailingIp(hosts_module._ip)
    monkeypatch.setattr(hosts_module, "_ip", ip)
    made = Hosts(2)
    steps = len(ip.calls)
    made.close()
    for ip.failing in range(1, steps + 1):
        ip.calls.clear()
        with pytest.raises(HostsError, match="refused by the test"):
            Hosts(2)
        assert links() == before, f"left behind after failing at {ip.calls[ip.failing - 1]}"


DISPATCHER_CONFIG = """
[dispatcher]
name = "H{i}"
listen = ["tcp:5570:interface={address}"]
connection_file = false
keepalive_interval = 0.5

[federation]
servers = [{servers}]
network = "hosts"
"""

WHERE_ACTOR = """
[[actor]]
class = "where:Where"
name = "where-3"
"""


def actornet_in(hosts, i, *args):
    """The ``actornet`` CLI run in host ``i``."""
    return subprocess.run(hosts.command(i, [str(Path(sys.executable).parent / "actornet"),
                                            *args]),
                          capture_output=True, text=True, timeout=30)


@pytest.mark.timeout(90)
@pytest_twisted.ensureDeferred
async def test_three_dispatchers_on_three_hosts_answer_each_other(hosts, processes, tmp_path):
    """A NATS node and a ``twistd actornet`` dispatcher per host: a call made in host 1
    at host 1's dispatcher is answered by the actor on host 3, through NATS, and
    every host's dispatcher lists all three."""
    start_nats_cluster(hosts, processes, jetstream=True)
    for i in (1, 2, 3):
        await routed(hosts, processes, i)
    where = Path(__file__).resolve().parent.parent / "examples" / "federation" / "where.py"
    (tmp_path / "where.py").write_text(where.read_text())
    for i in (1, 2, 3):
        own = [i] + [j for j in (1, 2, 3) if j != i]
        servers = ", ".join(f'"nats://{hosts.address(j)}:4222"' for j in own)
        config = tmp_path / f"h{i}.toml"
        config.write_text(DISPATCHER_CONFIG.format(i=i, address=hosts.address(i),
                                                   servers=servers)
                          + (WHERE_ACTOR if i == 3 else ""))
        processes.start(f"dispatcher-{i}", hosts.command(i, [
            str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=",
            "--reactor=asyncio", "actornet", "--config", str(config)]), cwd=tmp_path)
    endpoint = f"tcp:host={hosts.address(1)}:port=5570"
    deadline = reactor.seconds() + 30
    while True:
        called = await deferToThread(actornet_in, hosts, 1, "call", "where", "am_i",
                                     "--route", "--connect", endpoint, "--wait", "10")
        if called.returncode == 0 or reactor.seconds() > deadline:
            break
        await deferLater(reactor, 0.2)
    logs = "\n".join(processes.tail(f"dispatcher-{i}") for i in (1, 2, 3))
    assert called.returncode == 0, f"{called.stderr}\n{logs}"
    assert json.loads(called.stdout)["actor"] == "where-3"
    hops = [line.split()[1] for line in called.stderr.splitlines()[2:]]
    assert hops[1:5] == ["H1", "H3", "where-3", "H3"] and hops[-1] == "H1", called.stderr
    listed = await deferToThread(actornet_in, hosts, 2, "dispatchers", "--json", "--connect",
                                 f"tcp:host={hosts.address(2)}:port=5570")
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)["dispatchers"]] == [
        "H2", "H1", "H3"]
