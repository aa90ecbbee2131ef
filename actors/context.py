"""An actor's :class:`ActorContext`: everything the framework keeps about it.

As Akka Typed hands each actor an ``ActorContext``, actornet keeps its own
state for an actor on one object, ``actor.context``, so that a subclass may
use any other attribute or method name (``link``, ``session``, ``received``,
``state``, ...) without breaking the framework.  The context holds the
actor's :class:`~actornet.actors.session.Session` and its handler table,
receives what the session hands up, holds early requests while ``prepare()``
runs, and reports crashes to whoever listens (the actor's service).
"""

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.python.failure import Failure

from actornet.actors.handlers import Handlers
from actornet.actors.session import Session
from actornet.protocols.codes import INVENTORY_RELOADED


class ActorContext:
    """The network side of ``actor`` (``reserved``: the names of the Actor API, which
    no handler method may take).

    ``session`` sends and receives; ``handlers`` serves requests; ``crashed``
    is the reason of the actor's crash, or None while it is healthy.
    """

    def __init__(self, actor, reserved=frozenset()):
        self.actor = actor
        self.session = Session(actor, self)
        self.handlers = Handlers(actor, self.session, reserved)
        self.crashed = None
        self._crash_listeners = []
        self._attach_waiters = []
        self._held = None
        self._watching_inventory = False

    @property
    def link(self):
        """The link the actor is registered on, or None."""
        return self.session.link

    def when_attached(self):
        """A Deferred firing with the link once the actor is registered and prepared
        (at once if it is)."""
        if self.session.link is not None and self._held is None:
            return succeed(self.session.link)
        waiter = Deferred()
        self._attach_waiters.append(waiter)
        return waiter

    # -- crashes -----------------------------------------------------------

    def add_crash_listener(self, listener):
        """Call ``listener(reason)`` whenever the actor crashes."""
        self._crash_listeners.append(listener)

    def crash(self, reason):
        """The actor itself is broken (not one request): log it and tell the listeners."""
        self.crashed = reason
        log = self.actor.log
        if isinstance(reason, Failure):
            log.failure("{actor} crashed", reason, actor=self.actor.name)
        else:
            log.error("{actor} crashed: {reason}", actor=self.actor.name, reason=reason)
        for listener in list(self._crash_listeners):
            listener(reason)

    def run_hook(self, hook, *args):
        """Run a lifecycle hook; an exception in it, or its Deferred failing, is a crash."""
        maybeDeferred(hook, *args).addErrback(self.crash)

    # -- inventory ---------------------------------------------------------

    def watch_inventory(self):
        """Refresh the actor's inventory after every reload, from now on (once)."""
        if self._watching_inventory:
            return
        self._watching_inventory = True
        self.session.subscribe(INVENTORY_RELOADED, self._refetch_inventory)

    def _refetch_inventory(self, bag):
        actor = self.actor
        return Deferred.fromCoroutine(actor.refresh_inventory()).addErrback(
            lambda f: actor.log.warn("{actor}: could not fetch the new inventory: {error}",
                                     actor=actor.name, error=f.getErrorMessage()))

    # -- called by the session ---------------------------------------------

    def attached(self, link):
        """Registered on ``link``: run ``prepare()``, holding requests until it is done."""
        self._held = []
        actor = self.actor
        maybeDeferred(actor.prepare).addErrback(
            lambda f: actor.log.warn("{actor}: prepare failed ({error}); serving anyway",
                                     actor=actor.name, error=f.getErrorMessage())
        ).addCallback(lambda _: self._prepared(link))

    def _prepared(self, link):
        if self.session.link is not link:
            return
        held, self._held = self._held, None
        for request, body in held:
            self.handlers.serve(request, body)
        self.run_hook(self.actor.on_connect)
        waiters, self._attach_waiters = self._attach_waiters, []
        for waiter in waiters:
            waiter.callback(link)

    def detached(self, link, reason):
        """``link`` is gone (the session has failed its asks): drop held requests."""
        self._held = None
        self.run_hook(self.actor.on_disconnect, reason)

    def request(self, request, body):
        """A request came: hold it while ``prepare()`` runs, else serve it now."""
        held = self._held
        if held is not None:
            held.append((request, body))
            return
        self.handlers.serve(request, body)
