"""Running an actor: connected, reconnecting with backoff, with its timers.

:class:`ActorService` is a Twisted ``Service``: the twistd plugin and the test
kit start actors the same way.  It reconnects through ``ClientService``, which
waits for the dispatcher to accept the registration before it calls the
connection made, so an actor that is refused (a wrong token, a name still held
by its previous connection) simply tries again after its backoff delay.
"""

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from actors.link import ActorLink
from protocols.framing import DEFAULT_MAX_FRAME


def link_factory(actor, clock, token=None, keepalive_multiplier=3, max_frame=DEFAULT_MAX_FRAME):
    """A factory of links that register ``actor`` with the dispatcher."""
    factory = Factory.forProtocol(
        lambda: ActorLink(actor, clock, token, keepalive_multiplier, max_frame))
    factory.noisy = False
    return factory


class ActorService(MultiService):
    """Keeps one actor connected to the dispatcher at ``endpoint``.

    @param retry_policy: ``attempt -> seconds`` between reconnects; by default
        Twisted's backoff from 0.1 s up to 5 s, with jitter.
    """

    log = Logger()

    def __init__(self, actor, endpoint, clock, token=None, keepalive_multiplier=3,
                 retry_policy=None, max_frame=DEFAULT_MAX_FRAME):
        super().__init__()
        self.actor = actor
        self.clock = clock
        self.setName(actor.name)
        factory = link_factory(actor, clock, token, keepalive_multiplier, max_frame)
        self.client = ClientService(
            endpoint, factory, clock=clock,
            retryPolicy=retry_policy or backoffPolicy(initialDelay=0.1, maxDelay=5.0),
            prepareConnection=lambda link: link.ready)
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
        """A Deferred that fires with the link once the actor is registered."""
        return self.client.whenConnected()

    def _run_periodic(self, interval):
        self._periodic = self.clock.callLater(interval, self._run_periodic, interval)
        self.actor._safely(self.actor.periodic)

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
        return super().stopService()


def connect_once(actor, endpoint, clock, token=None, max_frame=DEFAULT_MAX_FRAME):
    """Connect ``actor`` once, without reconnecting.

    @return: a Deferred firing with the registered link, or failing with the
        dispatcher's refusal or the connection error.
    """
    factory = link_factory(actor, clock, token, max_frame=max_frame)
    return endpoint.connect(factory).addCallback(lambda link: link.ready)
