"""Autobahn's WebSocket protocol and factory around a :class:`GatewayConnection`.

The protocol decodes, encodes and enforces the size limit; what each message
means is the connection's business.  A connection is admitted in
``onConnect`` (autobahn waits for the Deferred it returns): the token is
checked and the connection's client connected and registered before the
handshake is answered, so a refused client gets an HTTP 401 and never a
WebSocket.
"""

import itertools

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError

from . import frames
from .admission import chosen_codec, presented_token, token_to_connect_with
from .connection import GatewayConnection
from .operations import BadMessage, read_operation

CLOSE_NORMAL = 1000

CLOSE_HANDSHAKE_SECONDS = 5.0
"""How long a WebSocket the gateway closes has to answer the close before its
TCP connection is dropped.  Dropping it discards what the kernel has not
delivered yet: the frames sent just before the close (the last answers, when
the gateway lost its connection to the dispatcher) would be lost with it, so
the client gets more than autobahn's default second to receive them."""


class GatewayProtocol(WebSocketServerProtocol):
    """One WebSocket client of the gateway."""

    log = Logger()

    def __init__(self):
        super().__init__()
        self.codec = None
        self.connection = None
        self.gone = False

    def onConnect(self, request):
        return Deferred.fromCoroutine(self._admit(request))

    async def _admit(self, request):
        gateway = self.factory.gateway
        self.codec, subprotocol = chosen_codec(request.protocols)
        token = token_to_connect_with(presented_token(request), gateway.config.token,
                                      gateway.network_token)
        name = gateway.next_name()
        try:
            client = await gateway.connect(name, token)
        except Exception as e:
            if isinstance(e, ActornetError) and e.status == Status.UNAUTHORIZED:
                raise ConnectionDeny(401, f"unauthorized: {e.message}") from e
            raise ConnectionDeny(503, f"the gateway cannot reach the dispatcher: {e}") from e
        if self.gone:
            await client.close()
            raise ConnectionDeny(400, "the client went away during the handshake")
        self.connection = GatewayConnection(client, self._send, gateway.config.max_calls)
        client.when_disconnected().addCallback(self._network_gone)
        return subprotocol

    def onOpen(self):
        config = self.factory.gateway.config
        self._send(frames.welcome(self.connection.client.name, self.codec.subprotocol,
                                  config.max_message_bytes, config.max_calls))

    def onMessage(self, payload, isBinary):
        try:
            operation = read_operation(self.codec.decode(payload, isBinary))
        except BadMessage as e:
            self.connection.refuse(e)
            return
        self.connection.received(operation)

    def onClose(self, wasClean, code, reason):
        self.gone = True
        if self.connection is not None:
            self.connection.close().addErrback(
                lambda f: self.log.failure("closing a gateway client failed", f))

    def _send(self, frame):
        try:
            payload = self.codec.encode(frame)
        except TypeError as e:
            payload = self._instead(frame, f"cannot be sent as {self.codec.subprotocol}: {e}",
                                    Status.MALFORMED_BODY)
        limit = self.maxMessagePayloadSize
        if 0 < limit < len(payload):
            payload = self._instead(frame, f"is {len(payload)} bytes, over the gateway's "
                                           f"max_message_bytes ({limit})", Status.TOO_LARGE)
        self.sendMessage(payload, isBinary=self.codec.binary)

    def _instead(self, frame, problem, status):
        """The error frame sent in place of ``frame``.  Only an answer's error
        carries the call's id: a progress report or an event that cannot be
        sent must not look like the end of a call."""
        op = frame["op"]
        if op in ("result", "error"):
            id, what = frame["id"], "the result"
        elif op == "progress":
            id, what = None, f"a progress report of call {frame['id']!r}"
        else:
            id, what = None, f"an event on {frame.get('topic')!r}"
        return self.codec.encode(frames.error(id, ActornetError(f"{what} {problem}",
                                                                status=status)))

    def _network_gone(self, reason):
        if not self.gone:
            self.sendClose(CLOSE_NORMAL, "the gateway lost its connection to the dispatcher")

    def _max_message_size_exceeded(self, size, limit, reason):
        """Autobahn's hook for a message over ``maxMessagePayloadSize``: close
        with a reason that names the setting to change."""
        super()._max_message_size_exceeded(
            size, limit, f"message too big: {size} bytes, over the gateway's "
                         f"max_message_bytes ({limit})")


class Gateway:
    """What every connection of one gateway shares: its config, how to reach the
    dispatcher, and the numbers in its connections' names.

    @param connect: ``connect(name, token)`` returns a Deferred firing with a
        registered :class:`~actornet.client.Client`.
    @param dispatcher_name: the dispatcher's name, part of each connection's
        name (``gateway-DISPATCHER-N``) so gateways of federated dispatchers
        never take each other's names.
    """

    def __init__(self, config, connect, network_token, dispatcher_name):
        self.config = config
        self.connect = connect
        self.network_token = network_token
        self.dispatcher_name = dispatcher_name
        self._numbers = itertools.count(1)
        self.factory = WebSocketServerFactory()
        self.factory.protocol = GatewayProtocol
        self.factory.gateway = self
        limit = config.max_message_bytes
        self.factory.setProtocolOptions(maxMessagePayloadSize=limit,
                                        maxFramePayloadSize=limit, failByDrop=False,
                                        closeHandshakeTimeout=CLOSE_HANDSHAKE_SECONDS)
        self.allow_origins(config.origins or ())

    def next_name(self):
        return f"gateway-{self.dispatcher_name}-{next(self._numbers)}"

    def allow_origins(self, origins):
        """Allow browser pages from ``origins`` (patterns such as
        ``http://127.0.0.1:5571``; ``*`` matches anything) from the next
        connection on.  A client that sends no Origin header (not a browser)
        is never refused for it."""
        self.origins = tuple(origins)
        self.factory.setProtocolOptions(allowedOrigins=list(origins))
