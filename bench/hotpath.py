"""The per-message CPU of each role's own code, in one process, without sockets.

    python bench/hotpath.py [--requests 20000] [--batch 10] [--body-size 0] [--repeat 5]

The pipelined benchmark measures whole processes, syscalls and wake-ups
included, on a noisy machine.  This one takes those away to show what each
role's *Python code* costs per request: the dispatcher, the Echo actor (the
worker) and the client of actornet, and the raw relay's relay, worker and
client (``raw_relay.py``), are wired together through in-memory transports
and fed batches of ``--batch`` frames (a read under pipelined load holds
several), each role's calls timed with ``time.perf_counter`` around them.
The transports only keep what is written, so Twisted's socket code is out of
both sides alike.

It prints one JSON line per role: µs per request for actornet and for the raw
relay (medians of ``--repeat`` runs), their ratio, and how many
``writeSequence`` calls each made per request.
"""

import argparse
import gc
import json
import statistics
import time

import raw_relay
from echo import Echo
from load import request_data
from twisted.internet import reactor
from twisted.internet.address import IPv4Address

from actornet.actors.link import ActorLink
from actornet.client import Client
from actornet.dispatcher.core import Dispatcher


class Sink:
    """A transport that keeps what is written until :meth:`take` empties it."""

    disconnecting = False

    def __init__(self, port):
        self.parts = []
        self.writes = 0
        self._peer = IPv4Address("TCP", "127.0.0.1", port)

    def writeSequence(self, parts):
        self.writes += 1
        self.parts.extend(parts)

    def write(self, data):
        self.writes += 1
        self.parts.append(data)

    def take(self):
        data, self.parts = b"".join(self.parts), []
        return data

    def getPeer(self):
        return self._peer

    def getHost(self):
        return self._peer

    def setTcpNoDelay(self, enabled):
        pass

    def registerProducer(self, producer, streaming):
        pass

    def unregisterProducer(self):
        pass

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def loseConnection(self):
        self.disconnecting = True

    def abortConnection(self):
        self.disconnecting = True


class Timer:
    """Seconds spent per role."""

    def __init__(self):
        self.spent = {}

    def call(self, role, function, *args):
        start = time.perf_counter()
        function(*args)
        self.spent[role] = self.spent.get(role, 0.0) + time.perf_counter() - start


def _split(data, frames):
    """``data`` cut into reads of ``frames`` frames each (the frame layout's lengths)."""
    reads, offset, start, count = [], 0, 0, 0
    while offset < len(data):
        offset += 4 + int.from_bytes(data[offset:offset + 4], "big")
        count += 1
        if count == frames:
            reads.append(data[start:offset])
            start, count = offset, 0
    if start < offset:
        reads.append(data[start:offset])
    return reads


def actornet_star():
    """A dispatcher, an Echo actor and a client, registered, on in-memory transports."""
    dispatcher = Dispatcher(reactor)
    pipes = {}
    for role, port in (("worker", 1), ("client", 2)):
        if role == "worker":
            owner = Echo(name="echo", clock=reactor)
            session = owner.context.session
        else:
            owner = Client(name="bench-client", clock=reactor)
            session = owner.session
        link = ActorLink(session, reactor)
        link_transport = Sink(port)
        link.makeConnection(link_transport)
        side = dispatcher.factory().buildProtocol(None)
        side_transport = Sink(port)
        side.makeConnection(side_transport)
        side.dataReceived(link_transport.take())
        link.dataReceived(side_transport.take())
        assert session.link is link, f"{role} did not register"
        pipes[role] = (owner, link, link_transport, side, side_transport)
    return dispatcher, pipes


def _round_trips(requests, batch, ask_one, hops):
    """Ask ``requests`` times in batches and carry every frame along ``hops``
    (``(sink, role, receiver)``: what ``sink`` holds is read by ``receiver``,
    timed as ``role``); seconds per role, and writes per role."""
    timer = Timer()
    answered = []

    def ask():
        for _ in range(batch):
            ask_one(answered.append)

    for _ in range(requests // batch):
        timer.call("client", ask)
        for sink, role, receiver in hops:
            for read in _split(sink.take(), batch):
                timer.call(role, receiver, read)
    assert len(answered) == requests, f"{len(answered)} of {requests} answered"
    client_out, to_worker, worker_out, to_client = (sink for sink, _, _ in hops)
    writes = {"client": client_out.writes, "worker": worker_out.writes,
              "dispatcher": to_worker.writes + to_client.writes}
    return timer.spent, writes


def run_actornet(requests, batch, data):
    """Seconds per role for ``requests`` echo requests, and writes per role."""
    _, pipes = actornet_star()
    client, client_link, client_out, client_side, client_side_out = pipes["client"]
    _, worker_link, worker_out, worker_side, worker_side_out = pipes["worker"]
    return _round_trips(
        requests, batch, lambda done: client.ask("bench", "echo", data).addCallback(done),
        [(client_out, "dispatcher", client_side.dataReceived),
         (worker_side_out, "worker", worker_link.dataReceived),
         (worker_out, "dispatcher", worker_side.dataReceived),
         (client_side_out, "client", client_link.dataReceived)])


def run_raw(requests, batch, data):
    """The same for the raw relay's client, relay and worker."""
    relay = raw_relay.Relay()
    client, client_out = raw_relay.Client(), Sink(2)
    client.makeConnection(client_out)
    worker, worker_out = raw_relay.Worker(), Sink(1)
    worker.makeConnection(worker_out)
    worker_side, worker_side_out = raw_relay.RelayProtocol(relay), Sink(1)
    worker_side.makeConnection(worker_side_out)
    worker_side.dataReceived(worker_out.take())
    client_side, client_side_out = raw_relay.RelayProtocol(relay), Sink(2)
    client_side.makeConnection(client_side_out)
    return _round_trips(
        requests, batch, lambda done: client.ask(data, done),
        [(client_out, "dispatcher", client_side.dataReceived),
         (worker_side_out, "worker", worker.dataReceived),
         (worker_out, "dispatcher", worker_side.dataReceived),
         (client_side_out, "client", client.dataReceived)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=10, help="frames per read")
    parser.add_argument("--body-size", type=int, default=0,
                        help="bytes of random blob per request (0: the ~100-byte map)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = request_data(args.body_size)
    runs = {"actornet": [], "raw": []}
    writes = {}
    for _ in range(args.repeat):
        for kind, run in (("raw", run_raw), ("actornet", run_actornet)):
            gc.collect()
            spent, writes[kind] = run(args.requests, args.batch, data)
            runs[kind].append(spent)
    for role in ("dispatcher", "worker", "client"):
        ours = statistics.median(1e6 * r[role] / args.requests for r in runs["actornet"])
        raw = statistics.median(1e6 * r[role] / args.requests for r in runs["raw"])
        print(json.dumps({
            "role": role, "body_size": args.body_size, "actornet_us": round(ours, 2),
            "raw_us": round(raw, 2), "ratio": round(ours / raw, 2),
            "actornet_writes_per_req": round(writes["actornet"][role] / args.requests, 2),
            "raw_writes_per_req": round(writes["raw"][role] / args.requests, 2)}), flush=True)


if __name__ == "__main__":
    main()
