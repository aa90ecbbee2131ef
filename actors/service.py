"""Running an actor: connected, reconnecting with backoff, with its timers.

:class:`ActorService` is a Twisted ``Service``: the twistd plugin and the test
kit start actors the same way.  It reconnects through ``ClientService``.  An
actor that is refused (a wrong token, a name still held by its previous
connection) is hung up on by the dispatcher and tries again; refusals count as
failed attempts, so its retries back off instead of hammering the dispatcher.

(``ClientService``'s ``prepareConnection`` would be the natural place to wait
for registration, but a connection lost while it is pending drives
``ClientService`` into a state with no transition, so the wait is kept here.)
"""

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from actornet.actors.link import DEFAULT_LINK, ActorLink


class LinkFactory(Factory):
    """Builds links under ``session``; ``registered``/``refused`` hear how each went."""

    noisy = False

    def __init__(self, session, clock, settings=DEFAULT_LINK, registered=None, refused=None):
        self.session = session
        self.clock = clock
        self.settings = settings
        self.registered = registered
        self.refused = refused

    def buildProtocol(self, addr):
        link = ActorLink(self.session, self.clock, self.settings)
        if self.registered is not None:
            link.ready.addCallbacks(self.registered, self.refused)
        return link


class ActorService(MultiService):
    """Keeps one actor connected to the dispatcher at ``endpoint``.

    @param retry_policy: ``attempt -> seconds`` between reconnects; by default
        Twisted's backoff from 0.1 s up to 5 s, with jitter.
    @param on_crash: called with the reason when the actor crashes; the service
        has already stopped the actor by then (it listens to the actor's
        context for crashes).
    """

    log = Logger()

    def __init__(self, actor, endpoint, clock, settings=DEFAULT_LINK, retry_policy=None,
                 on_crash=None):
        super().__init__()
        self.actor = actor
        self._on_crash = on_crash
        actor.context.add_crash_listener(self._crashed)
        self.clock = clock
        self.setName(actor.name)
        self._policy = retry_policy or backoffPolicy(initialDelay=0.1, maxDelay=5.0)
        self._refusals = 0
        factory = LinkFactory(actor.context.session, clock, settings, self._registered,
                              self._refused)
        self._endpoint = endpoint
        self.client = ClientService(endpoint, factory, clock=clock, retryPolicy=self._delay)
        self.client.setServiceParent(self)
        self._periodic = None
        self._lifetime = None

    def startService(self):
        super().startService()
        interval = self.actor.options.get("periodic_interval", self.actor.periodic_interval)
        if interval:
            self._periodic = self.clock.callLater(interval, self._run_periodic, interval)
        lifetime = self.actor.options.get("max_lifetime", self.actor.max_lifetime)
        if lifetime:
            self._lifetime = self.clock.callLater(lifetime, self._expire, lifetime)

    def whenReady(self):
        """A Deferred that fires once the actor is registered (at once if it is)."""
        return self.actor.when_attached()

    def _delay(self, attempt):
        return self._policy(attempt + self._refusals)

    def _registered(self, link):
        self._refusals = 0
        self.log.info("actor {actor} connected to the dispatcher at {endpoint} (connection "
                      "{connection})", actor=self.actor.name, endpoint=str(self._endpoint),
                      connection=link.connection_id)
        return link

    def _refused(self, failure):
        self._refusals += 1
        self.log.warn("{actor} could not register ({reason}); retrying",
                      actor=self.actor.name, reason=failure.getErrorMessage())

    def _crashed(self, reason):
        if not self.running:
            return
        stopping = self.disownServiceParent() if self.parent is not None else None
        if stopping is None:
            stopping = self.stopService()
        if self._on_crash is not None:
            self._on_crash(reason)
        return stopping

    def _run_periodic(self, interval):
        self._periodic = self.clock.callLater(interval, self._run_periodic, interval)
        self.actor.context.run_hook(self.actor.periodic)

    def _expire(self, lifetime):
        self._lifetime = None
        self.log.info("{actor} reached its maximum lifetime of {lifetime}s; leaving",
                      actor=self.actor.name, lifetime=lifetime)
        if self.parent is not None:
            self.disownServiceParent()
        else:
            self.stopService()

    def stopService(self):
        for call in (self._periodic, self._lifetime):
            if call is not None and call.active():
                call.cancel()
        self._periodic = self._lifetime = None
        link = self.actor.context.link
        if link is not None:
            link.leave()
        return super().stopService()

