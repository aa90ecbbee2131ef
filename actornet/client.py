"""A client for scripts and tests: a session that serves nothing and only asks.

    client = await connect("tcp:host=127.0.0.1:port=5570", token="...")
    answer = await client.ask("math", "add", {"a": 1, "b": 2})
    await client.close()

``connect(["tcp:host=a:port=5570", "tcp:host=b:port=5570"])`` tries several
dispatchers in order and uses the first that answers.
"""

import os

from twisted.internet.interfaces import IReactorThreads

from actornet.actors.link import LinkSettings
from actornet.actors.runner import ThreadRunner
from actornet.actors.service import LinkFactory
from actornet.actors.session import Session
from actornet.config import connection_file_path
from actornet.connfile import read_running
from actornet.failover import endpoint_for
from actornet.protocols.errors import ActornetError, RequestTimeout


class Client:
    """A connection to the dispatcher with no services, connected once (no reconnect).

    When the dispatcher it is connected to goes, asks in flight fail with
    ``ActorLost`` (``actor_lost``) and later ones fail at once; the client
    stays disconnected.  A new :func:`connect` with the same endpoints reaches
    another dispatcher.

    ``session`` is its :class:`~actornet.actors.session.Session` (and
    ``session.link`` its link while connected).  ``clock`` is its time and
    ``runner`` where blocking work runs (e.g. :func:`actornet.fetch.fetch`'s disk
    writes): a :class:`ThreadRunner` on ``clock`` when that is a reactor with
    threads, else on the global reactor.
    """

    services = ()
    stamp_route = True

    def __init__(self, name=None, clock=None, runner=None):
        self.name = name or f"client-{os.getpid()}-{id(self):x}"
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        if runner is None:
            runner = ThreadRunner(clock if IReactorThreads.providedBy(clock) else None)
        self.runner = runner
        self.session = Session(self)

    @property
    def connected(self):
        """Whether the client is registered with the dispatcher now."""
        return self.session.link is not None

    def ask(self, service, method, data=None, *, target="any", timeout=30.0,
            idempotent=False, on_progress=None):
        """As :meth:`actornet.Actor.ask`: a Deferred firing once with the answer or an
        error, ``on_progress(bag)`` called for each progress report before it;
        ``cancel()`` stops the handler."""
        return self.session.ask(service, method, data, target=target, timeout=timeout,
                                idempotent=idempotent, on_progress=on_progress)

    def submit(self, service, method, data=None, *, target="any", timeout=3600.0):
        """Start a job through the network's jobs service
        (:mod:`actornet.actors.jobs`): fires at once with ``{"status": 202, "job":
        ID, "actors": [...]}``, or fails as an ask would when no actor can take it."""
        return self.ask("jobs", "submit", {"service": service, "method": method,
                                           "data": data or {}, "target": target,
                                           "timeout": timeout})

    def job(self, job_id, *, wait=False, timeout=3600.0):
        """How job ``job_id`` stands; with ``wait``, once it is done."""
        return self.ask("jobs", "wait" if wait else "status", {"job": job_id},
                        timeout=timeout)

    def tell(self, service, method, data=None, *, target="any"):
        """As :meth:`actornet.Actor.tell`."""
        self.session.tell(service, method, data, target=target)

    def publish(self, topic, data=None):
        """As :meth:`actornet.Actor.publish`."""
        return self.session.publish(topic, data)

    def subscribe(self, topic, callback):
        """As :meth:`actornet.Actor.subscribe`."""
        self.session.subscribe(topic, callback)

    def unsubscribe(self, topic, callback=None):
        """As :meth:`actornet.Actor.unsubscribe`."""
        self.session.unsubscribe(topic, callback)

    def when_disconnected(self):
        """A Deferred firing (with the reason, an exception, or None when it was not
        connected) once the connection to the dispatcher is gone, whether
        :meth:`close` closed it or the dispatcher went."""
        return self.session.when_detached()

    def close(self):
        """Leave the network; the Deferred fires once the connection is closed."""
        return self.session.leave()


def connect(endpoint=None, token=None, *, name=None, reactor=None, connection_file=None,
            runner=None, timeout=None):
    """Connect a :class:`Client` to a dispatcher.

    @param endpoint: a client endpoint string or object, or a list of endpoint
        strings tried in order, the first that connects being used (with
        several, each has ``CONNECT_TIMEOUT`` seconds before the next is
        tried: see :mod:`actornet.failover`); when None, the dispatcher's
        connection-info file tells where (and the token).
    @param reactor: the client's reactor and clock (default: the global reactor).
    @param runner: where the client's blocking work runs (see :class:`Client`).
    @param timeout: seconds to connect and register, or None to wait as long
        as the connection lasts.  A peer that accepts the connection and never
        answers (not a dispatcher, or a frozen one) would otherwise keep the
        caller waiting forever.
    @return: a Deferred firing with the registered client, or failing with
        the dispatcher's refusal (e.g. ``Unauthorized``), a ``ProtocolError``
        when the peer sends bytes that are not actornet frames, a
        ``RequestTimeout`` saying which phase ran out of time (the half-open
        connection is closed), or the connection error (``NoEndpointConnected``,
        naming each, when several endpoints all failed).  Actornet errors name
        the endpoint reached when it was given as a string.
    @raise ValueError: (not in the Deferred) when the connection file is
        missing or its dispatcher is not running, or the list is empty.
    """
    if reactor is None:
        from twisted.internet import reactor
    if endpoint is None:
        info = read_running(connection_file_path(connection_file))
        endpoint = info["endpoint"]
        token = token if token is not None else info.get("token")
    if isinstance(endpoint, str):
        endpoint = [endpoint]
    description = None
    if isinstance(endpoint, list | tuple):
        description = " or ".join(endpoint)
        endpoint = endpoint_for(reactor, endpoint)
    attempt = _Registration(description, endpoint)
    client = Client(name=name, clock=reactor, runner=runner)
    factory = LinkFactory(client.session, reactor, LinkSettings(token=token))
    registering = endpoint.connect(factory).addCallback(attempt.connected)
    registering.addErrback(attempt.name_the_endpoint)
    if timeout is not None:
        registering.addTimeout(timeout, reactor, onTimeoutCancel=attempt.timed_out)
    return registering.addCallback(lambda _: client)


class _Registration:
    """One connection's way to READY: which phase it is in, for a timeout's
    message, and the endpoint string (if given as strings) errors name: all
    of them while connecting, the one reached after."""

    def __init__(self, description, endpoint):
        self.description = description
        self.endpoint = endpoint
        self.link = None

    def connected(self, link):
        self.link = link
        if self.description is not None:
            self.description = str(self.endpoint)
        return link.ready

    def name_the_endpoint(self, failure):
        failure.trap(ActornetError)
        error = failure.value
        if self.description is None:
            return failure
        raise type(error)(f"{self.description}: {error.message}", status=error.status,
                          remote_type=error.remote_type) from error

    def timed_out(self, result, timeout):
        where = self.description or "the dispatcher"
        if self.link is None:
            raise RequestTimeout(f"could not connect to {where} within {timeout:g}s")
        self.link.transport.abortConnection()
        raise RequestTimeout(f"no READY from {where} within {timeout:g}s: "
                             "is that a dispatcher?")
