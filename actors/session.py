"""The session under a link: what the frames between a peer and the dispatcher mean.

As AMP's ``BoxDispatcher`` sits between its framing and its ``CommandLocator``,
the session sits between the link (:mod:`actornet.actors.link`: registration
and keepalives) and whatever serves requests (an actor's handlers, see
:mod:`actornet.actors.context`).  It numbers asks and matches each answer to
its Deferred (:mod:`actornet.actors.asks`), fails everything outstanding
with ACTOR_LOST when the link goes, stamps routes, sends through the current
link, and hands incoming requests up and events to their subscribers.  It
keeps the requests it hands up until they are answered, so a CANCEL from the
dispatcher can stop their handler and a progress report can find its request.

A session lives as long as its actor or client and serves one link after
another: subscriptions are renewed on each new link; an ask never outlives the
link it was sent on.

The session's ``owner`` gives it a ``name``, ``services``, a ``clock`` and
``stamp_route``, read when used (so a test kit may set the clock after the
owner was built); its ``receiver`` hears ``attached(link)``,
``detached(link, reason)`` and ``request(request, body)``.
"""

import os
import socket

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger

from actornet.actors.asks import Asks
from actornet.actors.requests import (
    FORWARDED,
    Request,
    bag_of,
    error_of,
    not_text,
    target_of,
)
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.databag import as_body, unread_body
from actornet.protocols.errors import ActorLost, ActornetError, ProtocolError
from actornet.protocols.stamp import constant_part, stamp_after


class Session:
    """Requests, answers, events and routes for ``owner``, over one link at a time.

    Without a ``receiver`` (a client) the session serves nothing: a request
    that reaches it is answered UNKNOWN_METHOD.
    """

    log = Logger()

    def __init__(self, owner, receiver=None):
        self._owner = owner
        self._receiver = receiver if receiver is not None else _ServesNothing(self)
        self.link = None
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._asks = Asks(owner, self._send)
        self._handling = {}
        self._ids = 0
        self._seq = 0
        self._stamp_link = self._stamp_constant = None
        self._subscriptions = {}
        self._detach_waiters = []

    @property
    def name(self):
        return self._owner.name

    @property
    def services(self):
        return self._owner.services

    @property
    def outstanding(self):
        """How many asks wait for their answer."""
        return len(self._asks)

    @property
    def handling(self):
        """How many requests from others wait for this peer's answer."""
        return len(self._handling)

    # -- sending ----------------------------------------------------------

    def ask(self, service, method, data=None, *, target="any", timeout=30.0,
            idempotent=False, on_progress=None):
        """Send a request; a Deferred fires exactly once with the answer's bag or an
        :class:`ActornetError` (a service or method that is not text, or a
        request over the frame limit, fails here, before anything is sent).

        ``on_progress(bag)`` is called for each progress report of the handler,
        in order and before the answer.  Cancelling the Deferred tells the
        dispatcher (which tells the worker) and fails it with :class:`Cancelled`.
        """
        if type(service) is not str or type(method) is not str:
            return fail(not_text(service, method))
        try:
            target = target_of(target)
            body = codec.encode(as_body(data))
        except (ProtocolError, TypeError) as e:
            return fail(e)
        link = self.link
        if link is None:
            return fail(self._not_connected())
        self._ids += 1
        rid = self._ids
        envelope = messages.request(rid, service, method, self._new_route(), target=target,
                                    ttl=float(timeout), idempotent=idempotent)
        try:
            sent = link.send(envelope, body)
        except ProtocolError as e:
            return fail(e)
        if not sent:
            return fail(self._not_connected())
        return self._asks.add(rid, service, method, timeout, on_progress)

    def tell(self, service, method, data=None, *, target="any"):
        """Send a request that wants no answer.

        @raise ProtocolError: the service or method is not text, or the request
            is over the frame limit (TOO_LARGE).
        @raise ActorLost: there is no link.
        """
        if type(service) is not str or type(method) is not str:
            raise not_text(service, method)
        target = target_of(target)
        body = codec.encode(as_body(data))
        envelope = messages.tell(service, method, self._new_route(), target=target)
        if not self._send(envelope, body):
            raise self._not_connected()

    def forward(self, bag, service, method, data=None, *, target="any"):
        """Pass the request ``bag`` came with on; its answer goes to the original asker.

        @return: FORWARDED, for the handler to return.
        """
        request = getattr(bag, "_request", None)
        if request is None or request.tell:
            raise ValueError("forward() takes the bag of a request this actor is handling")
        if type(service) is not str or type(method) is not str:
            raise not_text(service, method)
        target = target_of(target)
        body = codec.encode(as_body(bag if data is None else data))
        self._ids += 1
        envelope = messages.request(self._ids, service, method,
                                    self._route_after(request.route, request.arrived),
                                    target=target, forwarding=request.rid)
        request.forwarded = True
        if not self._send(envelope, body):
            raise self._not_connected()
        return FORWARDED

    def progress(self, bag, data=None):
        """Report progress on the request ``bag`` came with to its asker.

        @return: False when nobody is waiting for it (a tell, a request already
            answered, forwarded or cancelled, no link), True once sent.
        @raise ValueError: ``bag`` is not the bag of a request this actor handles.
        """
        request = getattr(bag, "_request", None)
        if request is None:
            raise ValueError("progress() takes the bag of a request this actor is handling")
        if self._handling.get(request.rid) is not request or request.forwarded:
            return False
        body = codec.encode(as_body(data))
        return self._send(messages.progress(
            request.rid, self._route_after(request.route, request.arrived)), body)

    def publish(self, topic, data=None):
        """Send an event on ``topic``; False when there is no link."""
        if type(topic) is not str:
            raise ProtocolError(f"a topic is text, not {type(topic).__name__}")
        body = codec.encode(as_body(data))
        return self._send(messages.event(topic, self._new_route()), body)

    def subscribe(self, topic, callback):
        """Call ``callback(bag)`` for every event on ``topic``, on every link from now on."""
        if type(topic) is not str:
            raise ProtocolError(f"a topic is text, not {type(topic).__name__}")
        callbacks = self._subscriptions.setdefault(topic, [])
        callbacks.append(callback)
        if len(callbacks) == 1:
            self._send(messages.subscribe(topic))

    def unsubscribe(self, topic, callback=None):
        """Stop calling ``callback`` (or every callback) for ``topic``."""
        callbacks = self._subscriptions.get(topic, [])
        if callback is None:
            callbacks.clear()
        elif callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self._subscriptions.pop(topic, None)
            self._send(messages.unsubscribe(topic))

    def reply(self, result, request):
        """Answer ``request`` with ``result``; nothing for a tell or a forwarded request.

        A bag returned unread goes back as the body it came with, not re-encoded.
        """
        if request.tell or self._cancelled(request) or request.forwarded or result is FORWARDED:
            return
        try:
            body = unread_body(result)
            if body is None:
                body = codec.encode(as_body(result))
        except TypeError as e:
            self.reply_error(request, Status.FAILURE, "TypeError",
                             f"{request.service}.{request.method} returned data that cannot "
                             f"be sent: {e}")
            return
        link = self.link
        if link is None:
            return
        try:
            link.send(messages.response(
                request.rid, self._route_after(request.route, request.arrived)), body)
        except ProtocolError as e:
            self.reply_error(request, e.status, "TooLarge",
                             f"{request.service}.{request.method} answered with {e.message}")

    def reply_error(self, request, status, kind, message):
        """Answer ``request`` with an error of type ``kind``; a failed tell is only logged,
        a cancelled request not even that."""
        if request.tell:
            self.log.warn("{actor}: tell {service}.{method} failed: {message}",
                          actor=self.name, service=request.service, method=request.method,
                          message=message)
            return
        if self._cancelled(request):
            return
        self._send(messages.response(request.rid,
                                     self._route_after(request.route, request.arrived),
                                     status=status, error=[kind, message]))

    def leave(self):
        """Say DISCONNECT and close the link; the Deferred fires once it is gone."""
        gone = self.when_detached().addCallback(lambda _: None)
        if self.link is not None:
            self.link.leave()
        return gone

    def when_detached(self):
        """A Deferred firing with the reason (an exception) once the current link
        is gone, whoever closed it; at once with None when there is no link."""
        if self.link is None:
            return succeed(None)
        gone = Deferred()
        self._detach_waiters.append(gone)
        return gone

    # -- called by the link -----------------------------------------------

    def attached(self, link):
        """The dispatcher accepted the registration on ``link``."""
        self.link = link
        for topic in self._subscriptions:
            link.send(messages.subscribe(topic))
        self._receiver.attached(link)

    def received(self, kind, envelope, body, arrived):
        """One frame from the dispatcher (not READY, REFUSED or KEEPALIVE)."""
        if kind is Kind.REQUEST:
            request = Request(envelope["id"], envelope.get("r", []), arrived,
                              envelope.get("nr", False), envelope["svc"], envelope["m"],
                              envelope.get("src"))
            if not request.tell:
                self._handling[request.rid] = request
            self._receiver.request(request, body)
        elif kind is Kind.RESPONSE:
            self._answer(envelope, body)
        elif kind is Kind.PROGRESS:
            self._asks.progress(envelope, body)
        elif kind is Kind.CANCEL:
            self._stop(envelope["id"])
        elif kind is Kind.EVENT:
            self._event(envelope, body)
        elif kind is Kind.ERROR:
            what = (f"tell {envelope['svc']}.{envelope['m']}"
                    if "svc" in envelope and "m" in envelope else "a tell")
            self.log.warn("{actor}: {what} failed: {error}", actor=self.name, what=what,
                          error=error_of(envelope))

    def detached(self, link, reason):
        """``link`` is gone: every outstanding ask fails with ACTOR_LOST, at once."""
        if self.link is not link:
            return
        self.link = None
        self._handling.clear()
        self._asks.fail_all(lambda: ActorLost(
            f"{self.name} lost its connection to the dispatcher before the answer came "
            f"({reason.getErrorMessage()})"))
        self._receiver.detached(link, reason)
        waiting, self._detach_waiters = self._detach_waiters, []
        for gone in waiting:
            gone.callback(reason.value)

    # -- answers and events -------------------------------------------------

    def _answer(self, envelope, body):
        answer = self._asks.take(envelope["id"])
        if answer is None:
            if envelope["st"] != Status.SUCCESS:
                self.log.warn("{actor}: {error}", actor=self.name, error=error_of(envelope))
            return
        if envelope["st"] != Status.SUCCESS:
            answer.errback(error_of(envelope))
            return
        try:
            bag = bag_of(body, envelope.get("r", []), envelope.get("src"))
        except ActornetError as e:
            answer.errback(e)
            return
        answer.callback(bag)

    def malformed_answer(self, rid, error):
        """The answer to ask ``rid`` came malformed: that ask fails, once."""
        answer = self._asks.take(rid)
        if answer is not None:
            answer.errback(ProtocolError(f"a malformed answer came: {error}"))

    def _event(self, envelope, body):
        callbacks = self._subscriptions.get(envelope["top"])
        if not callbacks:
            return
        try:
            bag = bag_of(body, envelope.get("r", []), envelope.get("src"))
        except ActornetError as e:
            self.log.warn("{actor}: dropped an event on {topic}: {error}",
                          actor=self.name, topic=envelope["top"], error=e)
            return
        for callback in list(callbacks):
            maybeDeferred(callback, bag).addErrback(
                lambda f: self.log.failure("event handler failed", f))

    def _stop(self, rid):
        """The dispatcher cancelled request ``rid``: stop its handler, send no answer.
        A cancel of a request already answered (they crossed) changes nothing."""
        request = self._handling.pop(rid, None)
        if request is None:
            return
        request.cancelled = True
        if request.running is not None:
            request.running.cancel()

    def _cancelled(self, request):
        """Whether the asker of ``request`` (not a tell) cancelled it; either way it
        is being answered, so it is forgotten."""
        if self._handling.get(request.rid) is request:
            del self._handling[request.rid]
        return request.cancelled

    # -- helpers -----------------------------------------------------------

    def _send(self, envelope, body=b""):
        link = self.link
        return link is not None and link.send(envelope, body)

    def _not_connected(self):
        return ActorLost(f"{self.name} is not connected to the dispatcher")

    def _stamp(self, arrived, hop):
        self._seq += 1
        link = self.link
        owner = self._owner
        if self._stamp_link is not link:
            self._stamp_link = link
            self._stamp_constant = constant_part(
                owner.name, self.host, self.pid,
                (link.connection_id if link is not None else 0) or 0)
        return stamp_after(self._stamp_constant, self._seq, arrived, owner.clock.seconds(), hop)

    def _new_route(self):
        if not self._owner.stamp_route:
            return []
        return [self._stamp(self._owner.clock.seconds(), 1)]

    def _route_after(self, route, arrived):
        if not self._owner.stamp_route:
            return route
        return route + [self._stamp(arrived, len(route) + 1)]


class _ServesNothing:
    """The receiver of a session that serves nothing (a client)."""

    def __init__(self, session):
        self.session = session

    def attached(self, link):
        pass

    def detached(self, link, reason):
        pass

    def request(self, request, body):
        self.session.reply_error(request, Status.UNKNOWN_METHOD, "UnknownMethod",
                                 f"{self.session.name} serves nothing")
