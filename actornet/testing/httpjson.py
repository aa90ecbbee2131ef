"""GET a JSON document from a monitoring port on loopback, failing fast.

The kit polls ``nats-server``'s ``/routez`` and ``/healthz`` many times a second
while a cluster starts, so a refused connection must fail at once and a stuck
one within a timeout.
"""

import json

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer


class JsonGetter:
    """Reads JSON documents over plain HTTP from IPv4 addresses."""

    def __init__(self, reactor):
        self.reactor = reactor
        self._agent = Agent.usingEndpointFactory(reactor, _Direct(reactor))

    async def get(self, url, timeout=2.0):
        """The decoded JSON body at ``url``, whatever the status code.

        @raise Exception: the connection failed or took over ``timeout`` s per step,
            or the body is not JSON.
        """
        response = await self._agent.request(b"GET", url.encode()).addTimeout(
            timeout, self.reactor)
        body = _Body()
        response.deliverBody(body)
        return json.loads(await body.done.addTimeout(timeout, self.reactor))


@implementer(IAgentEndpointFactory)
class _Direct:
    """Connects straight to a monitoring port: the default ``HostnameEndpoint``
    holds a refused connection for 0.3 s, which would set the pace of every wait."""

    def __init__(self, reactor):
        self.reactor = reactor

    def endpointForURI(self, uri):
        return TCP4ClientEndpoint(self.reactor, uri.host.decode(), uri.port, timeout=2)


class _Body(Protocol):
    """Collects a response body (``readBody`` warns on every HTTP/1.1 response:
    Twisted's response transport has no ``abortConnection``)."""

    def __init__(self):
        self.done = Deferred()
        self._parts = []

    def dataReceived(self, data):
        self._parts.append(data)

    def connectionLost(self, reason):
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._parts))
        else:
            self.done.errback(reason)
