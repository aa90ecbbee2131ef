"""The Actor class users subclass.

An actor serves one or more services.  Its request handlers are methods marked
with :func:`handler`; a handler receives the request's :class:`DataBag` and may
return a value, a Deferred, or be ``async def``.  An exception in a handler
becomes an error at the asker carrying the exception's type and message.

From inside an actor, :meth:`Actor.ask`, :meth:`Actor.tell`,
:meth:`Actor.forward`, :meth:`Actor.publish` and :meth:`Actor.subscribe` reach
the rest of the network, always through the dispatcher; :attr:`Actor.journal`
reaches the dispatcher's bag storage.

The class holds the user's API only.  Everything the framework keeps about an
actor (its session, link, handler table, held requests, crash listeners) is
on one attribute, ``self.context`` (an
:class:`~actornet.actors.context.ActorContext`), so a subclass may name its own
attributes and methods as it likes, ``context`` alone excepted.
"""

from pathlib import Path

from twisted.logger import Logger

from actornet.actors.context import ActorContext
from actornet.actors.handlers import handler
from actornet.actors.journal import JournalClient
from actornet.actors.requests import FORWARDED
from actornet.actors.runner import ThreadRunner

__all__ = ["FORWARDED", "Actor", "handler"]


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
    @param clock: the actor's time (default: the global reactor).
    @param runner: where blocking work runs, ``self.runner.run(f, *args)``
        (default: a :class:`~actornet.actors.runner.ThreadRunner` on the
        global reactor).
    """

    services = ()
    periodic_interval = None
    max_lifetime = None
    stamp_route = True
    inventory_service = None
    log = Logger()

    def __init__(self, name=None, services=None, options=None, clock=None, runner=None):
        self.name = name or type(self).__name__.lower()
        self.services = tuple(services if services is not None else type(self).services)
        self.options = dict(options or {})
        self.config_dir = Path.cwd()
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.runner = runner if runner is not None else ThreadRunner()
        self.inventory = {}
        self.context = ActorContext(self, ACTOR_API)

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

    def on_reload_signal(self):
        """Called in the actor's process on SIGHUP (e.g. to re-read files)."""

    async def refresh_inventory(self):
        """Fetch this actor's inventory and keep it current across reloads."""
        service = self.options.get("inventory", self.inventory_service)
        self.context.watch_inventory()
        answer = await self.ask(service, "get", {"services": list(self.services)},
                                timeout=10.0)
        self.inventory = dict(answer)
        self.on_inventory(self.inventory)

    # -- reaching the network ---------------------------------------------

    @property
    def connected(self):
        """Whether the actor is registered with the dispatcher now."""
        return self.context.link is not None

    def when_attached(self):
        """A Deferred that fires once the actor is registered and prepared (at once
        if it is)."""
        return self.context.when_attached()

    def ask(self, service, method, data=None, *, target="any", timeout=30.0,
            idempotent=False, on_progress=None):
        """Send a request and get its answer.

        ``on_progress(bag)`` is called with each progress report of the
        handler (see :meth:`progress`), in order, before the answer; a gathered
        request's reports each name their actor as ``bag.sender``.

        @return: a Deferred that fires exactly once: with the answer's
            :class:`DataBag`, or with an :class:`ActornetError` (the handler's
            error, TIMEOUT, ACTOR_LOST, NO_WORKERS, MALFORMED_ENVELOPE when
            ``service`` or ``method`` is not text, ...).  Its ``cancel()``
            stops the handler and fails it with :class:`Cancelled`.
        """
        return self.context.session.ask(service, method, data, target=target,
                                        timeout=timeout, idempotent=idempotent,
                                        on_progress=on_progress)

    def progress(self, bag, data=None):
        """Report progress on the request ``bag`` came with to its asker, at once.

        ``data`` is any map (``{"done": 3, "total": 10}`` draws a bar in
        ``actornet call --progress``).  Reports are never the answer and are
        dropped for an asker that reads too slowly; the handler is never held
        back.  Call it in the reactor thread (from a thread:
        ``self.runner.reactor.callFromThread(self.progress, bag, data)``).

        @return: False when nobody waits for it (a tell, a request answered,
            forwarded or cancelled), else True.
        """
        return self.context.session.progress(bag, data)

    def tell(self, service, method, data=None, *, target="any"):
        """Send a request that wants no answer (a failure to deliver it is logged).

        @raise ActorLost: when the actor is not connected.
        @raise ProtocolError: when ``service`` or ``method`` is not text.
        """
        self.context.session.tell(service, method, data, target=target)

    def forward(self, bag, service, method, data=None, *, target="any"):
        """Pass the request ``bag`` came with on to another service.

        The final answer goes straight to the original asker, not back here.
        ``data`` replaces the bag's content when given.  Return the result of
        this call from the handler.
        """
        return self.context.session.forward(bag, service, method, data, target=target)

    @property
    def journal(self):
        """The dispatcher's journal (z_server's bag storage): ``save``, ``get``,
        ``save_and_send``, ``match_merge``, ``read`` and ``last``, see
        :class:`~actornet.actors.journal.JournalClient`."""
        return JournalClient(self)

    def publish(self, topic, data=None):
        """Send an event to every subscriber of ``topic``; False when not connected."""
        return self.context.session.publish(topic, data)

    def subscribe(self, topic, callback):
        """Call ``callback(bag)`` for every event on ``topic``, across reconnects."""
        self.context.session.subscribe(topic, callback)

    def unsubscribe(self, topic, callback=None):
        """Stop calling ``callback`` (or every callback) for ``topic``."""
        self.context.session.unsubscribe(topic, callback)

    def crash(self, reason):
        """The actor itself is broken (not one request): log it and tell whoever
        runs the actor, whose supervisor restarts it with a fresh instance."""
        self.context.crash(reason)



ACTOR_API = frozenset(name for name in vars(Actor) if not name.startswith("_"))
"""What :class:`Actor` itself offers; a handler method may not hide any of it."""
