"""The baseline: a minimal two-hop relay in plain Twisted and cbor2, no actornet.

    python bench/raw_relay.py relay           # prints READY {"port": ...}
    python bench/raw_relay.py worker PORT     # the worker the relay sends requests to

client → relay → worker → relay → client, each in its own process.  Frames
have actornet's layout (``u32 N | u32 H | header CBOR | body CBOR``); the
relay decodes the small header map, appends a stamp (a list shaped like
actornet's), swaps the request id, re-encodes it and passes the body's bytes on
untouched.  The worker decodes header and body and answers with both
re-encoded, as an actor echoing its bag does; clients and the worker stamp too.
TCP_NODELAY is on, as in actornet.
"""

import os
import socket
import struct
import sys
import time

import cbor2
from procs import say
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol

_HEADER = struct.Struct(">II")
HOST = socket.gethostname()
PID = os.getpid()
_seq = 0


def stamp(name, conn, arrived, hop):
    global _seq
    _seq += 1
    return [name, HOST, PID, conn, _seq, arrived, time.time(), hop]


class Frames(Protocol):
    """Splits the stream into (header bytes, body bytes) frames.

    The reads of a frame cut short are kept in a list and joined once it is
    whole (joining at every read would copy a megabyte frame eight times over).
    """

    def __init__(self):
        self._rest = []
        self._kept = 0
        self._wanted = 8

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data):
        if self._rest:
            self._rest.append(data)
            self._kept += len(data)
            if self._kept < self._wanted:
                return
            data = b"".join(self._rest)
        end = len(data)
        offset = 0
        self._wanted = 8
        while end - offset >= 8:
            length, head = _HEADER.unpack_from(data, offset)
            stop = offset + 4 + length
            if stop > end:
                self._wanted = 4 + length
                break
            self.frameReceived(data[offset + 8:offset + 8 + head],
                               data[offset + 8 + head:stop])
            offset = stop
        self._rest = [data[offset:]] if offset < end else []
        self._kept = end - offset

    def send(self, header, body):
        self.transport.writeSequence(
            [_HEADER.pack(4 + len(header) + len(body), len(header)), header, body])

    def frameReceived(self, header, body):
        raise NotImplementedError


class Relay:
    """The relay's state: its worker and the requests it is waiting on."""

    def __init__(self):
        self.worker = None
        self.pending = {}
        self.ids = 0
        self.conns = 0


class RelayProtocol(Frames):
    def __init__(self, relay):
        super().__init__()
        self.relay = relay
        relay.conns += 1
        self.conn = relay.conns

    def frameReceived(self, header, body):
        arrived = time.time()
        relay = self.relay
        envelope = cbor2.loads(header)
        if envelope.get("hello") == "worker":
            relay.worker = self
            return
        route = envelope["r"]
        route.append(stamp("relay", self.conn, arrived, len(route) + 1))
        if self is relay.worker:
            asker, envelope["id"] = relay.pending.pop(envelope["id"])
            asker.send(cbor2.dumps(envelope), body)
        else:
            relay.ids += 1
            relay.pending[relay.ids] = (self, envelope["id"])
            envelope["id"] = relay.ids
            relay.worker.send(cbor2.dumps(envelope), body)


class Worker(Frames):
    def connectionMade(self):
        super().connectionMade()
        self.send(cbor2.dumps({"hello": "worker"}), b"")

    def frameReceived(self, header, body):
        arrived = time.time()
        envelope = cbor2.loads(header)
        data = cbor2.loads(body)
        route = envelope["r"]
        route.append(stamp("worker", 0, arrived, len(route) + 1))
        self.send(cbor2.dumps(envelope), cbor2.dumps(data))


class Client(Frames):
    """Asks the relay; ``ask(data, done)`` calls ``done(True)`` when the answer comes."""

    def __init__(self):
        super().__init__()
        self.ids = 0
        self.waiting = {}

    def ask(self, data, done):
        self.ids += 1
        self.waiting[self.ids] = done
        envelope = {"id": self.ids, "r": [stamp("client", 0, time.time(), 1)]}
        self.send(cbor2.dumps(envelope), cbor2.dumps(data))

    def frameReceived(self, header, body):
        envelope = cbor2.loads(header)
        cbor2.loads(body)
        self.waiting.pop(envelope["id"])(True)


def connect_client(address):
    """A Deferred firing with a connected :class:`Client`; ``address`` is HOST:PORT."""
    host, _, port = address.rpartition(":")
    endpoint = TCP4ClientEndpoint(reactor, host, int(port))
    return endpoint.connect(Factory.forProtocol(Client))


def _ready(**info):
    say("READY", dict(info, pid=PID))


def main():
    role = sys.argv[1]
    if role == "relay":
        relay = Relay()
        factory = Factory.forProtocol(lambda: RelayProtocol(relay))
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        endpoint.listen(factory).addCallback(lambda port: _ready(port=port.getHost().port))
    elif role == "worker":
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", int(sys.argv[2]))
        endpoint.connect(Factory.forProtocol(Worker)).addCallback(lambda _: _ready())
    else:
        sys.exit(f"unknown role {role!r}: relay or worker")
    reactor.run()


if __name__ == "__main__":
    main()
