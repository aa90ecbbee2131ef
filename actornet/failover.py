"""Several dispatchers' endpoints as one client endpoint that fails over.

An actor or client given several endpoints (``connect = ["tcp:...",
"tcp:..."]``) connects through a :class:`FailoverEndpoint`.  One ``connect()``
tries the endpoints in turn, starting with the one that connected last, until
one connects, and gives each ``connect_timeout`` seconds, so a dead or silent
dispatcher holds an attempt up by that much at most.  An attempt fails only
once every endpoint has failed, so ``ClientService`` reconnects and backs off
exactly as with one endpoint, and an actor whose dispatcher died reaches
another one reconnect delay later.
"""

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectError, ConnectionRefusedError, TimeoutError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from actornet.listening import DescribedEndpoint

CONNECT_TIMEOUT = 5.0
"""Seconds each endpoint of an attempt has to connect before the next is tried."""

log = Logger()


class NoEndpointConnected(ConnectError):
    """Every endpoint of one attempt failed; the message names each and why.

    ``failures`` pairs each endpoint with its failure, in the order tried.
    """

    def __init__(self, failures):
        super().__init__(string="; ".join(f"{endpoint}: {failure.getErrorMessage()}"
                                          for endpoint, failure in failures))
        self.failures = failures

    @property
    def refused(self):
        """Whether every endpoint refused the connection: nothing listens there (yet)."""
        return all(failure.check(ConnectionRefusedError) for _, failure in self.failures)

    def __str__(self):
        return self.args[0]


@implementer(IStreamClientEndpoint)
class FailoverEndpoint:
    """Connects through the first of ``endpoints`` that answers.

    It logs as the endpoint that connected last (the first the next attempt
    tries), so "connected to the dispatcher at ..." names the one reached.
    A ``connect()`` fails with :class:`NoEndpointConnected` once each endpoint
    has failed once; cancelling it cancels the endpoint being tried.

    @param endpoints: client endpoints (at least one), in the order of preference.
    @param clock: the time the connect timeouts run on.
    """

    def __init__(self, endpoints, clock, connect_timeout=CONNECT_TIMEOUT):
        if not endpoints:
            raise ValueError("no endpoint to connect to")
        self.endpoints = tuple(endpoints)
        self.clock = clock
        self.connect_timeout = connect_timeout
        self._first = 0

    @property
    def current(self):
        """The endpoint that connected last (the first one until one has)."""
        return self.endpoints[self._first]

    def connect(self, factory):
        count = len(self.endpoints)
        order = [(self._first + step) % count for step in range(count)]
        attempt = _Attempt(self, factory, order)
        attempt.try_next()
        return attempt.done

    def _connected(self, index):
        self._first = index

    def __str__(self):
        return str(self.current)

    def __repr__(self):
        return f"FailoverEndpoint({', '.join(map(str, self.endpoints))})"


class _Attempt:
    """One ``connect()``: the endpoints at ``order`` one at a time until one connects."""

    def __init__(self, failover, factory, order):
        self.failover = failover
        self.factory = factory
        self.order = order
        self.failures = []
        self.trying = None
        self.cancelled = False
        self.done = Deferred(self._cancel)

    def try_next(self):
        index = self.order.pop(0)
        endpoint = self.failover.endpoints[index]
        self.trying = maybeDeferred(endpoint.connect, self.factory)
        self.trying.addTimeout(self.failover.connect_timeout, self.failover.clock,
                               onTimeoutCancel=_no_connection)
        self.trying.addCallbacks(self._connected, self._failed, callbackArgs=(index,),
                                 errbackArgs=(endpoint,))

    def _connected(self, protocol, index):
        self.trying = None
        self.failover._connected(index)
        self.done.callback(protocol)

    def _failed(self, failure, endpoint):
        self.trying = None
        if self.cancelled:
            return
        log.info("could not connect to {endpoint}: {reason}", endpoint=str(endpoint),
                 reason=failure.getErrorMessage())
        self.failures.append((endpoint, failure))
        if self.order:
            self.try_next()
        else:
            self.done.errback(NoEndpointConnected(self.failures))

    def _cancel(self, done):
        self.cancelled = True
        if self.trying is not None:
            self.trying.cancel()


def _no_connection(result, timeout):
    raise TimeoutError(string=f"no connection within {timeout:g}s")


def endpoint_for(reactor, descriptions):
    """The client endpoint for one endpoint string or several (tried in order).

    One string gives a plain :class:`DescribedEndpoint`: with nothing to fail
    over to, it connects as a single endpoint always has (its own timeout).

    @raise ValueError: for no strings, or one that is not an endpoint.
    """
    if len(descriptions) == 1:
        return DescribedEndpoint(reactor, descriptions[0])
    return FailoverEndpoint([DescribedEndpoint(reactor, description)
                             for description in descriptions], reactor)
