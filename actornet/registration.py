"""Telling other systems that the network is up, and that it is going.

A registration hook is any object providing :class:`IRegistration`: systemd's
notify protocol (:mod:`actornet.systemd`, used on its own when ``NOTIFY_SOCKET``
is set), or a user's class named in a ``[[registration]]`` table (Consul,
Kubernetes, a load balancer's API, ...).

The order is the promise: ``register`` is called once every listener is
listening (so whoever reads the registration can connect at once), and
``deregister`` is called first when the network stops, before any listener
closes (so whoever still reads the old registration is not refused while the
deregistration travels).  Hooks run one after another, registering in the
order given and deregistering in reverse; each call is bounded by the hook's
timeout.  A failure is logged with the hook's name and the network keeps
serving, unless the hook is ``required``: then the network stops with one
line saying why, and the process exits with status 1.
"""

import atexit
import os
import socket
import sys
from collections.abc import Callable
from importlib.metadata import version

import attrs
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.defer import TimeoutError as NoAnswer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from actornet.listening import client_endpoint_for

DEFAULT_TIMEOUT = 10.0


class IRegistration(Interface):
    """Registers a network with an outside system and deregisters it again."""

    def register(info):
        """The network described by ``info`` (a :class:`NetworkInfo`) is listening.

        @return: a Deferred that fires once registered; it may fail.
        """

    def deregister(info):
        """The network described by ``info`` is about to stop listening.

        Called even when ``register`` failed or timed out (the outside system may
        hold a half-made registration), so it should not mind being told to
        remove what is not there.

        @return: a Deferred that fires once deregistered; it may fail.
        """


@attrs.frozen
class Bound:
    """One endpoint the dispatcher listens on.

    ``description``: as configured (``tcp:0:interface=127.0.0.1``);
    ``connect``: a client endpoint string reaching it from this host
    (``tcp:host=127.0.0.1:port=41234``); ``host`` and ``port``: the address
    actually bound (``port`` is None for a unix socket, whose path is ``host``).
    """

    description: str
    connect: str
    host: str
    port: int | None
    tls: bool = False


@attrs.frozen
class NetworkInfo:
    """What a hook is told about the network it registers.

    ``listen``: a :class:`Bound` per listener of the dispatcher's, TLS ones
    last; ``http``: the dashboard's and monitoring URL (``http://127.0.0.1:5571/``)
    or None; ``gateway``: the WebSocket gateway's (``ws://127.0.0.1:5572/``) or
    None; ``health``: the health endpoint's ``/status`` URL or None;
    ``actors``: the names of the actors configured beside the dispatcher;
    ``snapshot``: a callable returning the dispatcher's current
    :class:`~actornet.dispatcher.snapshot.Snapshot` (its ``summary()`` is what
    a health report needs).
    """

    name: str
    pid: int
    host: str
    listen: tuple
    http: str | None
    actors: tuple
    version: str
    snapshot: Callable = attrs.field(eq=False, repr=False)
    gateway: str | None = None
    health: str | None = None


def bound(listener, tls=False):
    """The :class:`Bound` of a listener service that is listening."""
    address = listener.endpoint.port.getHost()
    host = getattr(address, "host", None)
    if host is None:
        name = address.name
        host = name.decode() if isinstance(name, bytes) else name
    return Bound(listener.description, client_endpoint_for(address), host,
                 getattr(address, "port", None), tls)


def describe(dispatcher, listeners, tls_listeners, fronts, actors):
    """The :class:`NetworkInfo` of a running dispatcher, its listener services and
    its :class:`~actornet.fronts.Fronts` (given as URLs, not among ``listen``)."""
    urls = fronts.urls()
    return NetworkInfo(
        name=dispatcher.name, pid=os.getpid(), host=socket.gethostname(),
        listen=tuple(bound(each, each in tls_listeners) for each in listeners
                     if each not in fronts.listeners),
        http=urls["http"], actors=tuple(actor.name for actor in actors),
        version=version("actornet"), snapshot=dispatcher.snapshot,
        gateway=urls["gateway"], health=urls["health"])


@attrs.frozen
class Hook:
    """A hook with its name (for the log), whether the network may run without
    it, and how long each of its calls may take."""

    name: str
    hook: object
    required: bool = False
    timeout: float = DEFAULT_TIMEOUT


class Registrations:
    """Runs the hooks: registers in order, deregisters in reverse.

    @param hooks: :class:`Hook` records.
    @param clock: bounds each call with the hook's timeout.
    @param on_required_failure: called with the hook and the failure when a
        ``required`` hook fails to register (it says why; nothing else is
        logged); the hooks after it are not called.
    @ivar registering: the Deferred of the running or finished ``register``
        (None before it), for whoever must wait for the registering to be over.
    """

    log = Logger()

    def __init__(self, hooks, clock, on_required_failure):
        self.hooks = tuple(hooks)
        self.clock = clock
        self.on_required_failure = on_required_failure
        self.info = None
        self._called = []
        self.registering = None

    def register(self, info):
        """Call every hook's ``register(info)``, one after another.

        @return: a Deferred that fires with True once all were called, or False
            when a required hook failed; it never fails.
        """
        self.info = info
        self.registering = Deferred.fromCoroutine(
            self._each("register", self.hooks, info, self._called))
        return self.registering

    def deregister(self):
        """Call ``deregister`` on every hook that was asked to register, newest
        first, once the registering is over (it is bounded), with the info it
        registered.

        @return: a Deferred that fires when all were called; it never fails.
        """
        return Deferred.fromCoroutine(self._deregister())

    async def _deregister(self):
        if self.registering is not None:
            await self.registering
        called, self._called = self._called, []
        await self._each("deregister", tuple(reversed(called)), self.info, [])

    async def _each(self, method, hooks, info, called):
        for hook in hooks:
            called.append(hook)
            try:
                await self._call(hook, method, info)
                continue
            except Exception:
                failure = Failure()
            if method == "register" and hook.required:
                self.on_required_failure(hook, failure)
                return False
            self.log.error("actornet: registration {hook!r}: {method} failed: {why}",
                           hook=hook.name, method=method, why=_reason(failure, hook))
        return True

    def _call(self, hook, method, info):
        """The hook's call, bounded by its timeout."""
        call = maybeDeferred(getattr(hook.hook, method), info)
        return call.addTimeout(hook.timeout, self.clock)


def _reason(failure, hook):
    if failure.check(NoAnswer):
        return f"no answer within {hook.timeout:g}s"
    return f"{failure.type.__name__}: {failure.getErrorMessage()}"


def stop_for_required(reactor, log=Registrations.log):
    """What a network does when a required hook failed: log one line, stop
    the reactor (which deregisters and drains as on SIGTERM) and exit with
    status 1 once twistd has finished."""

    def stop(hook, failure):
        log.critical("actornet: stopping: the required registration {hook!r} failed "
                     "({why})", hook=hook.name, why=_reason(failure, hook))
        atexit.register(_exit_with, 1)
        reactor.callWhenRunning(reactor.stop)

    return stop


def _exit_with(status):
    """End the process with ``status``: twistd ends with 0 whatever stopped it.

    Runs at the interpreter's exit, after twistd removed its pid file and
    logged its last line; exit handlers registered before it are skipped
    (actornet registers none in a running network).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
