"""How an ``actornet`` command reaches its dispatcher: where, for how long, and waiting.

A command finds the dispatcher through ``--connect`` (and ``--token``) or the
connection file the dispatcher wrote; ``--connect`` may name several
dispatchers, tried in order until one answers.  ``--timeout`` bounds the whole
exchange: connecting, registering and the answer share one deadline, so a port
that accepts and never answers (an HTTP server, a frozen dispatcher) cannot
keep a script waiting.  ``--wait`` first gives a dispatcher that is still
starting time to come up: right after ``twistd actornet &`` the connection file
is not written yet, the port refuses connections and the actors have not
registered, and all three are retried until the wait is over.
"""

import attrs
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.task import deferLater

from actornet.client import connect
from actornet.config import connection_file_path
from actornet.connfile import read_running
from actornet.failover import NoEndpointConnected
from actornet.protocols.errors import NoWorkers, RequestTimeout, UnknownService

RETRY_INTERVAL = 0.1


class ConnectionFailed(Exception):
    """The dispatcher could not be reached; the message says where and why."""


class NotUpYet(ConnectionFailed):
    """No dispatcher is there (yet): no connection file or a stale one, or the
    connection was refused.  ``--wait`` retries these."""


@attrs.define
class Reached:
    """A registered client, the token it used, and when the command's time is up.

    ``deadline`` is when ``--timeout`` runs out; ``wait_until`` when ``--wait``
    does (the moment the command started, without it).
    """

    client: object
    token: str | None
    timeout: float
    deadline: float
    wait_until: float

    def seconds_left(self):
        """What is left of ``--timeout`` for the next request (at least 1 ms)."""
        return round(max(self.deadline - self.client.clock.seconds(), 0.001), 3)

    async def ask(self, service, method, data=None, *, target="any", on_progress=None):
        """Ask within what is left of ``--timeout``.

        While ``--wait`` lasts, a request that found no actor for its service
        (nothing ran) is sent again: right after ``twistd actornet &`` the
        dispatcher answers before the actors it starts have registered.  The
        timeout then counts from the attempt that found one.
        """
        clock = self.client.clock
        while True:
            try:
                return await self.client.ask(service, method, data, target=target,
                                             timeout=self.seconds_left(),
                                             on_progress=on_progress)
            except (UnknownService, NoWorkers):
                if clock.seconds() + RETRY_INTERVAL > self.wait_until:
                    raise
            await deferLater(clock, RETRY_INTERVAL)
            self.deadline = clock.seconds() + self.timeout


def locate(args):
    """The ``(endpoints, token)`` the options name, from the connection file if no
    ``--connect`` was given.

    @raise NotUpYet: the file is missing or its dispatcher is not running.
    """
    if args.connect is not None:
        return args.connect, args.token
    try:
        info = read_running(connection_file_path(args.connection_file))
    except ValueError as e:
        raise NotUpYet(str(e)) from e
    return (info["endpoint"],), args.token if args.token is not None else info.get("token")


async def reach(reactor, args):
    """Connect and register as ``args`` say; with ``args.wait``, retry what
    :class:`NotUpYet` covers every ``RETRY_INTERVAL`` until the wait is over.

    @return: a :class:`Reached` whose deadline is ``args.timeout`` after the
        attempt that succeeded began.
    @raise RequestTimeout: the wait, connecting, or registering ran out of time.
    @raise ConnectionFailed: the dispatcher could not be reached.
    @raise ActornetError: the dispatcher refused the connection, or the peer is
        not a dispatcher.
    """
    wait_until = reactor.seconds() + args.wait
    while True:
        started = reactor.seconds()
        try:
            endpoints, token = locate(args)
            client = await _connect(reactor, endpoints, token, args.timeout)
            return Reached(client, token, args.timeout, started + args.timeout,
                           wait_until)
        except NotUpYet as e:
            if not args.wait:
                raise
            if reactor.seconds() + RETRY_INTERVAL > wait_until:
                raise RequestTimeout(f"no dispatcher came up within {args.wait:g}s (--wait): "
                                     f"{e}") from e
        await deferLater(reactor, RETRY_INTERVAL)


async def _connect(reactor, endpoints, token, timeout):
    """Connect through the first of ``endpoints`` that answers; several that all
    failed are one :class:`NoEndpointConnected` naming each, a lone one's
    failure is its own error."""
    try:
        return await connect(endpoints, token, reactor=reactor, timeout=timeout)
    except NoEndpointConnected as e:
        raise (NotUpYet if e.refused else ConnectionFailed)(str(e)) from e
    except ConnectionRefusedError as e:
        raise NotUpYet(f"{endpoints[0]}: {e}") from e
    except ConnectError as e:
        raise ConnectionFailed(f"{endpoints[0]}: {e}") from e
