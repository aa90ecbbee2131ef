"""The Actor class users subclass.

An actor serves one or more services.  Its request handlers are methods marked
with :func:`handler`; a handler receives the request's :class:`DataBag` and may
return a value, a Deferred, or be ``async def``.  An exception in a handler
becomes an error at the asker carrying the exception's type and message.

From inside an actor, :meth:`Actor.ask`, :meth:`Actor.tell`,
:meth:`Actor.forward`, :meth:`Actor.publish` and :meth:`Actor.subscribe` reach
the rest of the network, always through the dispatcher.
"""

import os
import socket
from inspect import iscoroutine
from pathlib import Path

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from actornet.protocols import codec
from actornet.protocols.codes import INVENTORY_RELOADED, Kind, Status
from actornet.protocols.databag import DataBag, as_body
from actornet.protocols.deadlines import Deadlines
from actornet.protocols.errors import ActorLost, ActornetError, RequestTimeout, error_for
from actornet.protocols.stamp import stamp_bytes

_HANDLER_MARK = "_actornet_handler"


def handler(method=None, *, name=None):
    """Mark a method as a request handler, served under its own name or ``name``.

    Use as ``@handler`` or ``@handler(name="other-name")``.
    """
    def mark(function):
        setattr(function, _HANDLER_MARK, name or function.__name__)
        return function
    return mark(method) if method is not None else mark


class Forwarded:
    """Returned by :meth:`Actor.forward`: the answer will come from further down."""

    def __repr__(self):
        return "<forwarded>"


FORWARDED = Forwarded()


class _Request:
    """What an actor keeps about a request it is handling."""

    __slots__ = ("rid", "route", "arrived", "tell", "service", "method")

    def __init__(self, rid, route, arrived, tell, service, method):
        self.rid = rid
        self.route = route
        self.arrived = arrived
        self.tell = tell
        self.service = service
        self.method = method


class Actor:
    """Base class for actors.

    Class attributes a subclass may set (a config's options override them):
      ``services``: the services served when the config names none;
      ``periodic_interval``: seconds between calls of :meth:`periodic`;
      ``max_lifetime``: seconds after which the actor leaves the network;
      ``stamp_route``: False to pass bags on without adding a stamp (hot paths);
      ``inventory_service``: a service to fetch ``self.inventory`` from (the
      ``inventory`` option overrides it).

    @param name: unique in the network; defaults to the class name in lower case.
    @param options: free-form settings from the config, as ``self.options``.
    """

    services = ()
    periodic_interval = None
    max_lifetime = None
    stamp_route = True
    inventory_service = None
    log = Logger()

    def __init__(self, name=None, services=None, options=None, clock=None):
        self.name = name or type(self).__name__.lower()
        self.services = tuple(services if services is not None else type(self).services)
        self.options = dict(options or {})
        self.config_dir = Path.cwd()
        self.crashed = None
        self.on_crash = None
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.link = None
        self.handlers = _collect_handlers(self)
        self._pending = {}
        self._ids = 0
        self._seq = 0
        self._subscriptions = {}
        self._forwarded = set()
        self._attach_waiters = []
        self._deadlines = None
        self._held = None
        self._watching_inventory = False
        self.inventory = {}

    # -- hooks for subclasses ---------------------------------------------

    def on_connect(self):
        """Called each time the actor is registered with the dispatcher and prepared."""

    def on_disconnect(self, reason):
        """Called each time the connection to the dispatcher is lost."""

    def periodic(self):
        """Called every ``periodic_interval`` seconds, connected or not."""

    async def prepare(self):
        """Runs after every registration and before any request is handled.

        By default it fetches ``self.inventory`` when an inventory service is
        configured.  Requests that arrive meanwhile wait; if this fails, the
        failure is logged and requests are served anyway.
        """
        if self.options.get("inventory", self.inventory_service):
            await self.refresh_inventory()

    def on_inventory(self, inventory):
        """Called with the new ``self.inventory`` after every fetch."""

    async def refresh_inventory(self):
        """Fetch this actor's inventory and keep it current across reloads."""
        service = self.options.get("inventory", self.inventory_service)
        if not self._watching_inventory:
            self._watching_inventory = True
            self.subscribe(INVENTORY_RELOADED, lambda bag: self._refetch_inventory())
        answer = await self.ask(service, "get", {"services": list(self.services)},
                                timeout=10.0)
        self.inventory = dict(answer)
        self.on_inventory(self.inventory)

    def on_reload_signal(self):
        """Called in the actor's process on SIGHUP (e.g. to re-read files)."""

    def _refetch_inventory(self):
        return Deferred.fromCoroutine(self.refresh_inventory()).addErrback(
            lambda f: self.log.warn("{actor}: could not fetch the new inventory: {error}",
                                    actor=self.name, error=f.getErrorMessage()))

    # -- reaching the network ---------------------------------------------

    @property
    def connected(self):
        return self.link is not None

    def when_attached(self):
        """A Deferred that fires once the actor is registered and prepared (at once
        if it is)."""
        if self.link is not None and self._held is None:
            return succeed(self.link)
        waiter = Deferred()
        self._attach_waiters.append(waiter)
        return waiter

    def ask(self, service, method, data=None, *, target="any", timeout=30.0,
            idempotent=False):
        """Send a request and get its answer.

        @return: a Deferred that fires exactly once: with the answer's
            :class:`DataBag`, or with an :class:`ActornetError` (the handler's
            error, TIMEOUT, ACTOR_LOST, NO_WORKERS, ...).
        """
        self._ids += 1
        rid = self._ids
        envelope = {"k": Kind.REQUEST, "id": rid, "svc": service, "m": method,
                    "tgt": _target(target), "ttl": float(timeout), "r": self._new_route()}
        if idempotent:
            envelope["idem"] = True
        try:
            body = codec.encode(as_body(data))
        except TypeError as e:
            return _failed(e)
        if not self._send(envelope, body):
            return _failed(ActorLost(f"{self.name} is not connected to the dispatcher"))
        answer = Deferred(lambda d: self._forget(rid))
        if self._deadlines is None:
            self._deadlines = Deadlines(self.clock, self._timed_out)
        bucket = self._deadlines.add(rid, self.clock.seconds() + timeout)
        self._pending[rid] = (answer, bucket, service, method, timeout)
        return answer

    def tell(self, service, method, data=None, *, target="any"):
        """Send a request that wants no answer.

        @raise ActorLost: when the actor is not connected.
        """
        envelope = {"k": Kind.REQUEST, "id": 0, "nr": True, "svc": service, "m": method,
                    "tgt": _target(target), "r": self._new_route()}
        if not self._send(envelope, codec.encode(as_body(data))):
            raise ActorLost(f"{self.name} is not connected to the dispatcher")

    def forward(self, bag, service, method, data=None, *, target="any"):
        """Pass the request ``bag`` came with on to another service.

        The final answer goes straight to the original asker, not back here.
        ``data`` replaces the bag's content when given.  Return the result of
        this call from the handler.
        """
        request = getattr(bag, "_request", None)
        if request is None or request.tell:
            raise ValueError("forward() takes the bag of a request this actor is handling")
        self._ids += 1
        envelope = {"k": Kind.REQUEST, "id": self._ids, "fwd": request.rid, "svc": service,
                    "m": method, "tgt": _target(target),
                    "r": self._route_after(request.route, request.arrived)}
        body = codec.encode(as_body(bag if data is None else data))
        self._forwarded.add(request.rid)
        if not self._send(envelope, body):
            raise ActorLost(f"{self.name} is not connected to the dispatcher")
        return FORWARDED

    def publish(self, topic, data=None):
        """Send an event to every subscriber of ``topic``; False when not connected."""
        envelope = {"k": Kind.EVENT, "top": topic, "r": self._new_route()}
        return self._send(envelope, codec.encode(as_body(data)))

    def subscribe(self, topic, callback):
        """Call ``callback(bag)`` for every event on ``topic``, across reconnects."""
        callbacks = self._subscriptions.setdefault(topic, [])
        callbacks.append(callback)
        if len(callbacks) == 1:
            self._send({"k": Kind.SUBSCRIBE, "top": topic})

    def unsubscribe(self, topic, callback=None):
        """Stop calling ``callback`` (or every callback) for ``topic``."""
        callbacks = self._subscriptions.get(topic, [])
        if callback is None:
            callbacks.clear()
        elif callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self._subscriptions.pop(topic, None)
            self._send({"k": Kind.UNSUBSCRIBE, "top": topic})

    # -- called by the link -----------------------------------------------

    def attached(self, link):
        """The dispatcher accepted us on ``link``."""
        self.link = link
        for topic in self._subscriptions:
            self._send({"k": Kind.SUBSCRIBE, "top": topic})
        self._held = []
        maybeDeferred(self.prepare).addErrback(
            lambda f: self.log.warn("{actor}: prepare failed ({error}); serving anyway",
                                    actor=self.name, error=f.getErrorMessage())
        ).addCallback(lambda _: self._prepared(link))

    def _prepared(self, link):
        held, self._held = self._held, None
        if self.link is not link:
            return
        for request in held:
            self._request(*request)
        self._safely(self.on_connect)
        waiters, self._attach_waiters = self._attach_waiters, []
        for waiter in waiters:
            waiter.callback(link)

    def detached(self, link, reason):
        """``link`` is gone: every pending ask fails with ACTOR_LOST, at once."""
        if self.link is not link:
            return
        self.link = None
        self._held = None
        self._forwarded.clear()
        pending, self._pending = self._pending, {}
        for rid, (answer, bucket, *_) in pending.items():
            self._deadlines.discard(rid, bucket)
            answer.errback(ActorLost(
                f"{self.name} lost its connection to the dispatcher before the answer came "
                f"({reason.getErrorMessage()})"))
        self._safely(self.on_disconnect, reason)

    def received(self, kind, envelope, body, arrived):
        if kind is Kind.REQUEST:
            self._request(envelope, body, arrived)
        elif kind is Kind.RESPONSE or kind is Kind.ERROR:
            self._answer(envelope, body)
        elif kind is Kind.EVENT:
            self._event(envelope, body)

    # -- handling requests ------------------------------------------------

    def _request(self, envelope, body, arrived):
        if self._held is not None:
            self._held.append((envelope, body, arrived))
            return
        route = envelope.get("r", [])
        request = _Request(envelope["id"], route, arrived, envelope.get("nr", False),
                           envelope["svc"], envelope["m"])
        method = self.handlers.get(request.method)
        if method is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            self._reply_error(request, Status.UNKNOWN_METHOD, "UnknownMethod",
                              f"{self.name} has no method {request.method!r} (it has: {known})")
            return
        try:
            bag = self._bag(envelope, body)
        except ActornetError as e:
            self._reply_error(request, e.status, "MalformedBody", e.message)
            return
        bag._request = request
        try:
            result = method(bag)
        except Exception:
            self._handler_failed(Failure(), request)
            return
        if isinstance(result, Deferred) or iscoroutine(result):
            maybeDeferred(lambda: result).addCallbacks(
                self._reply, self._handler_failed, callbackArgs=(request,),
                errbackArgs=(request,))
        else:
            self._reply(result, request)

    def _reply(self, result, request):
        if request.rid in self._forwarded:
            self._forwarded.discard(request.rid)
            return
        if request.tell or result is FORWARDED:
            return
        try:
            body = codec.encode(as_body(result))
        except TypeError as e:
            self._reply_error(request, Status.FAILURE, "TypeError",
                              f"{request.service}.{request.method} returned data that cannot "
                              f"be sent: {e}")
            return
        self._send({"k": Kind.RESPONSE, "id": request.rid, "st": Status.SUCCESS,
                    "r": self._route_after(request.route, request.arrived)}, body)

    def _handler_failed(self, failure, request):
        self._forwarded.discard(request.rid)
        error = failure.value
        status = error.status if isinstance(error, ActornetError) else Status.FAILURE
        kind = getattr(error, "remote_type", None) or type(error).__name__
        self.log.info("{actor}: {service}.{method} raised {kind}: {error}", actor=self.name,
                      service=request.service, method=request.method, kind=kind, error=error)
        message = error.message if isinstance(error, ActornetError) else str(error)
        self._reply_error(request, status, kind, message)

    def _reply_error(self, request, status, kind, message):
        if request.tell:
            self.log.warn("{actor}: tell {service}.{method} failed: {message}",
                          actor=self.name, service=request.service, method=request.method,
                          message=message)
            return
        self._send({"k": Kind.RESPONSE, "id": request.rid, "st": status,
                    "err": [kind, message],
                    "r": self._route_after(request.route, request.arrived)})

    # -- answers and events -------------------------------------------------

    def _answer(self, envelope, body):
        entry = self._pending.pop(envelope.get("id"), None)
        if entry is None:
            if envelope.get("st") != Status.SUCCESS:
                self.log.warn("{actor}: {error}", actor=self.name,
                              error=_error_of(envelope))
            return
        answer, bucket, *_ = entry
        self._deadlines.discard(envelope["id"], bucket)
        if envelope.get("st") != Status.SUCCESS or envelope["k"] == Kind.ERROR:
            answer.errback(_error_of(envelope))
            return
        try:
            bag = self._bag(envelope, body)
        except ActornetError as e:
            answer.errback(e)
            return
        answer.callback(bag)

    def _event(self, envelope, body):
        callbacks = self._subscriptions.get(envelope["top"])
        if not callbacks:
            return
        try:
            bag = self._bag(envelope, body)
        except ActornetError as e:
            self.log.warn("{actor}: dropped an event on {topic}: {error}",
                          actor=self.name, topic=envelope["top"], error=e)
            return
        for callback in list(callbacks):
            maybeDeferred(callback, bag).addErrback(
                lambda f: self.log.failure("event handler failed", f))

    def _timed_out(self, rids):
        for rid in rids:
            entry = self._pending.pop(rid, None)
            if entry is not None:
                answer, _, service, method, timeout = entry
                answer.errback(RequestTimeout(
                    f"no answer to {service}.{method} within {timeout}s"))

    def _forget(self, rid):
        entry = self._pending.pop(rid, None)
        if entry is not None:
            self._deadlines.discard(rid, entry[1])

    # -- helpers -----------------------------------------------------------

    def _bag(self, envelope, body):
        try:
            data = codec.decode(bytes(body)) if len(body) else {}
        except ValueError as e:
            raise ActornetError(f"malformed body: {e}", status=Status.MALFORMED_BODY) from e
        if type(data) is not dict:
            raise ActornetError(f"a body is a map, not {type(data).__name__}",
                                status=Status.MALFORMED_BODY)
        return DataBag.received(data, envelope.get("r", []), envelope.get("src"))

    def _send(self, envelope, body=b""):
        link = self.link
        return link is not None and link.send(envelope, body)

    def _stamp(self, arrived, hop):
        self._seq += 1
        connection = self.link.connection_id if self.link is not None else 0
        return stamp_bytes(self.name, self.host, self.pid, connection or 0, self._seq, arrived,
                           self.clock.seconds(), hop)

    def _new_route(self):
        if not self.stamp_route:
            return []
        return [self._stamp(self.clock.seconds(), 1)]

    def _route_after(self, route, arrived):
        if not self.stamp_route:
            return route
        return route + [self._stamp(arrived, len(route) + 1)]

    def _safely(self, hook, *args):
        """Run a lifecycle hook; an exception in it is a crash of the actor itself."""
        maybeDeferred(hook, *args).addErrback(self.crash)

    def crash(self, reason):
        """The actor itself is broken (not one request): log it and tell whoever
        runs the actor, whose supervisor restarts it with a fresh instance."""
        self.crashed = reason
        if isinstance(reason, Failure):
            self.log.failure("{actor} crashed", reason, actor=self.name)
        else:
            self.log.error("{actor} crashed: {reason}", actor=self.name, reason=reason)
        if self.on_crash is not None:
            self.on_crash(reason)


def _collect_handlers(actor):
    handlers = {}
    for klass in reversed(type(actor).__mro__):
        for attribute, value in vars(klass).items():
            served = getattr(value, _HANDLER_MARK, None)
            if served is not None:
                handlers[served] = getattr(actor, attribute)
    return handlers


def _target(target):
    if isinstance(target, (list, tuple)):
        return list(target)
    return target


def _failed(error):
    answer = Deferred()
    answer.errback(error)
    return answer


def _error_of(envelope):
    status = envelope.get("st", Status.FAILURE)
    kind, message = (envelope.get("err") or [Status.parse(status).label, "no detail"])[:2]
    return error_for(status, message, remote_type=kind)
