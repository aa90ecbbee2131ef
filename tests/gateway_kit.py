"""A WebSocket client of the gateway for tests, on autobahn's own client, and an
in-process network with a gateway."""

import itertools
import json
from pathlib import Path
from urllib.parse import quote

import cbor2
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as WaitedTooLong
from twisted.internet.endpoints import TCP4ClientEndpoint

from actornet import config, tap

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TESTS = Path(__file__).resolve().parent
WAIT = 10.0


class Refused(Exception):
    """The gateway refused the WebSocket handshake (or closed it before it opened)."""


class GatewayClient(WebSocketClientProtocol):
    """Keeps the frames it receives, in order; ``next`` and ``until`` wait for them."""

    def __init__(self):
        super().__init__()
        self.frames = []
        self._waiting = None
        self.closed = Deferred()
        self.ids = itertools.count(1)

    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.frames.append(cbor2.loads(payload) if isBinary else json.loads(payload))
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    def onClose(self, wasClean, code, reason):
        if not self.factory.opened.called:
            self.factory.opened.errback(Refused(reason))
        self.closed.callback((code, reason))

    def send(self, frame):
        """Send ``frame``: a dict in the subprotocol's codec, text as a text frame,
        bytes as a binary one."""
        binary = isinstance(frame, bytes)
        if isinstance(frame, dict):
            binary = self.websocket_protocol_in_use == "actornet.cbor"
            frame = cbor2.dumps(frame) if binary else json.dumps(frame)
        self.sendMessage(frame.encode() if isinstance(frame, str) else frame, isBinary=binary)

    async def until(self, wanted):
        """The first received frame (not taken yet) for which ``wanted(frame)`` is
        true; the frames before it are skipped."""
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if wanted(frame):
                    return frame
            self._waiting = Deferred()
            self._waiting.addTimeout(WAIT, reactor)
            try:
                await self._waiting
            except WaitedTooLong as e:
                raise AssertionError(f"no wanted frame within {WAIT:g}s (closed: "
                                     f"{self.closed.called})") from e

    async def answer(self, id):
        return await self.until(lambda f: f.get("id") == id and f["op"] in ("result", "error"))

    async def call(self, service, method, data=None, **fields):
        """Send a call and return its answer frame."""
        id = next(self.ids)
        self.send({"op": "call", "id": id, "service": service, "method": method,
                   "data": data or {}, **fields})
        return await self.answer(id)


async def open_gateway(port, *, token=None, protocols=None, headers=None):
    """An open :class:`GatewayClient` (its welcome frame taken), or Refused."""
    url = f"ws://127.0.0.1:{port}/"
    if token is not None:
        url += f"?token={quote(token)}"
    factory = WebSocketClientFactory(url, protocols=protocols, headers=headers)
    factory.protocol = GatewayClient
    factory.opened = Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    factory.opened.addTimeout(WAIT, reactor)
    try:
        client = await factory.opened
    except WaitedTooLong as e:
        raise AssertionError(f"the WebSocket to port {port} did not open within "
                             f"{WAIT:g}s") from e
    welcome = await client.until(lambda f: True)
    assert welcome["op"] == "welcome", welcome
    client.welcome = welcome
    return client


async def closed(client):
    client.sendClose()
    client.closed.addTimeout(WAIT, reactor)
    return await client.closed


NETWORK = """
[dispatcher]
listen = ["tcp:0:interface=127.0.0.1"]
connection_file = false
{dispatcher}

[gateway]
listen = "tcp:0:interface=127.0.0.1"
{gateway}

[[actor]]
class = "mathserver:MathServer"
name = "math"

[[actor]]
class = "sample_actors:Reporter"
name = "reporter"

[[actor]]
class = "sample_actors:Echo"
name = "echo"
"""


class Network:
    """A dispatcher with a gateway, the math server, a reporter and an echo, in this
    process."""

    def __init__(self, folder, dispatcher="", gateway=""):
        (folder / "mathserver.py").write_text((EXAMPLES / "mathserver.py").read_text())
        (folder / "sample_actors.py").write_text((TESTS / "sample_actors.py").read_text())
        (folder / "net.toml").write_text(NETWORK.format(dispatcher=dispatcher,
                                                        gateway=gateway))
        self.root = tap.build(config.load(folder / "net.toml"), reactor)
        self.service = self.root.services[0]

    async def start(self):
        self.root.startService()
        for actor in self.root.actors():
            await actor.when_attached()
        return self

    def actor(self, name):
        return next(actor for actor in self.root.actors() if actor.name == name)

    @property
    def port(self):
        return self.service.fronts.gateway_listener.endpoint.port.getHost().port

    async def stop(self):
        await self.root.stopService()
