"""Several dispatchers, one network: the dispatcher's side of a federation.

Dispatchers of one network share a NATS cluster (the ``bus``, see
:mod:`~actornet.dispatcher.natsbus`) under the subjects ``actornet.<network>.``:

- ``hello``: each dispatcher's hello (see :mod:`~actornet.dispatcher.directory`),
  from which every other learns its actors and notices its death;
- ``link.<to>.<from>``: the frames of the link from one dispatcher to another
  (see :mod:`~actornet.dispatcher.links`): another dispatcher is one more peer,
  and its actors are :class:`~actornet.dispatcher.remote.RemoteActor` entries
  of the registry reached through that peer;
- ``events.<from>``: events published at one dispatcher, for the subscribers
  of every other.

Names are unique across the network: a name is claimed in a JetStream
key-value bucket before its actor is admitted (see :mod:`~actornet.dispatcher.claims`).
A dispatcher cut off from NATS keeps serving its own star; requests that
would have left it are refused FEDERATION_DOWN until NATS is back.
"""

import random

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from actornet.dispatcher.claims import Claims
from actornet.dispatcher.directory import BadHello, RemoteDispatcher, hello, read_hello
from actornet.dispatcher.fedevents import EventRelay
from actornet.dispatcher.links import HEADER, STALE, LinkTransport, Renew
from actornet.dispatcher.peer import DispatcherProtocol
from actornet.dispatcher.remote import RemoteActor


class LinkProtocol(DispatcherProtocol):
    """The dispatcher's protocol on a federation link: a peer from the start."""

    def __init__(self, dispatcher, remote):
        super().__init__(dispatcher)
        self.remote = remote
        self.actors = set()

    def connectionMade(self):
        self.peer = self.dispatcher.linked(self, self.remote)


class Federation:
    """Joins ``dispatcher`` to the other dispatchers of ``network`` over ``bus``."""

    log = Logger()

    def __init__(self, dispatcher, bus, network):
        self.dispatcher = dispatcher
        self.bus = bus
        self.network = network
        self.name = dispatcher.name
        self.clock = dispatcher.clock
        self.registry = dispatcher.registry
        self.stats = dispatcher.stats
        self.prefix = f"actornet.{network}"
        self.boot = random.getrandbits(63) or 1
        self.remotes = {}
        self.links = {}
        self.up_since = None
        self._epochs = 0
        self._ticker = None
        self._hello_soon = None
        self._up_waiters = []
        self.registry.federation_down = "not connected to NATS yet"
        self.claims = Claims(bus, self.name, self.boot, self.owner_alive)
        dispatcher.federation = self
        self.events = EventRelay(dispatcher, bus, self.prefix, self.links,
                                 lambda: self.up_since is not None)
        dispatcher.topics.relay = self.events.relay

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        """Subscribe, say hello every keepalive interval, and connect."""
        self.bus.subscribe(f"{self.prefix}.hello", self.hello_in)
        self.bus.subscribe(f"{self.prefix}.link.{self.name}.*", self.link_in)
        self.bus.subscribe(f"{self.prefix}.events.*", self.events.event_in)
        self._ticker = LoopingCall(self.tick)
        self._ticker.clock = self.clock
        self._ticker.start(self.dispatcher.liveness.interval, now=False)
        return self.bus.start(self.up, self.down)

    def stop(self, say_bye=True):
        """Say goodbye (the others forget this dispatcher at once) and disconnect;
        without the goodbye the others notice after a holdtime, as for a crash."""
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        if self._hello_soon is not None and self._hello_soon.active():
            self._hello_soon.cancel()
        if self.up_since is not None and say_bye:
            self.say_hello(bye=True)
        stopped = self.bus.stop()
        self.up_since = None
        self.registry.federation_down = "this dispatcher has left the federation"
        for name in list(self.remotes):
            self.forget(name, "this dispatcher is stopping")
        return stopped

    def up(self):
        """Connected to NATS (again): say hello and claim every local name."""
        self.log.info("federation: dispatcher {name!r} joined network {network!r} over NATS",
                      name=self.name, network=self.network)
        self.up_since = self.clock.seconds()
        self.registry.federation_down = None
        self.say_hello()
        self.claims.reclaim([name for name, peer in self.registry.by_name.items()
                                 if peer.via is peer])
        waiters, self._up_waiters = self._up_waiters, []
        for waiter in waiters:
            waiter.callback(self)

    def when_up(self):
        """A Deferred that fires once connected to NATS (at once if it is)."""
        if self.up_since is not None:
            return succeed(self)
        waiter = Deferred()
        self._up_waiters.append(waiter)
        return waiter

    def down(self, why):
        """NATS is gone: every other dispatcher is out of reach until it is back."""
        down = f"the NATS link is down ({why})"
        if down != self.registry.federation_down:
            self.log.warn("federation: {down}; serving the local actors only", down=down)
        self.up_since = None
        self.registry.federation_down = down
        for name in list(self.remotes):
            self.forget(name, f"the NATS link is down ({why})")

    def tick(self):
        """Say hello; forget the dispatchers not heard from for a holdtime; open again
        each link whose other end has not opened its stream (an open is lost like
        any message, and frames wait for it)."""
        if self.up_since is not None:
            self.say_hello()
        now = self.clock.seconds()
        liveness = self.dispatcher.liveness
        for remote in list(self.remotes.values()):
            if liveness.expired(now, remote.last_seen):
                self.stats["federation_dispatchers_lost"] += 1
                self.forget(remote.name, liveness.silence(now, remote.last_seen))
        if self.up_since is not None:
            for link in self.links.values():
                if link.protocol.transport.in_epoch is None:
                    link.protocol.transport.open()

    def owner_alive(self, dispatcher, boot):
        """Whether the dispatcher that claimed a name lives (None: not known yet)."""
        remote = self.remotes.get(dispatcher)
        if remote is not None:
            return remote.boot == boot
        joined = self.up_since
        if joined is not None and self.clock.seconds() - joined >= \
                self.dispatcher.liveness.holdtime:
            return False
        return None

    # -- hellos ----------------------------------------------------------------

    def changed(self):
        """The local actors changed: say hello soon (once for many changes)."""
        if self.up_since is not None and (self._hello_soon is None
                                          or not self._hello_soon.active()):
            self._hello_soon = self.clock.callLater(0, self.say_hello)

    def say_hello(self, bye=False):
        dispatcher = self.dispatcher
        actors = [(name, peer.services, peer.in_flight)
                  for name, peer in self.registry.by_name.items()
                  if peer.via is peer and peer.services]
        health = {"connections": len(dispatcher.peers) - len(self.links),
                  "in_flight": len(dispatcher.inflight),
                  "answered": sum(peer.handled for peer in dispatcher.peers),
                  "uptime": round(self.clock.seconds() - dispatcher.started_at, 3)}
        message = hello(self.name, self.boot, dispatcher.outbox.host, dispatcher.outbox.pid,
                        actors, self.registry.known_services, health, bye=bye)
        if len(message) > self.bus.max_payload:
            self.stats["federation_hello_too_large"] += 1
            self.log.error("federation: this dispatcher's hello ({size} bytes, {count} actors) "
                           "is over NATS's max_payload ({limit} bytes): the others cannot "
                           "learn its actors; raise max_payload in nats-server's config",
                           size=len(message), count=len(actors), limit=self.bus.max_payload)
            return
        self.bus.publish(f"{self.prefix}.hello", message)

    def hello_in(self, subject, data):
        try:
            message = read_hello(data)
        except BadHello as e:
            self.stats["federation_bad_hellos"] += 1
            self.log.warn("federation: ignored a hello on {subject}: {why}", subject=subject,
                          why=e)
            return
        name, boot = message["name"], message["boot"]
        if name == self.name:
            if boot != self.boot:
                self.stats["federation_name_clashes"] += 1
                self.log.error("federation: another dispatcher ({host}, pid {pid}) is also "
                               "called {name!r} in network {network!r}; dispatcher names "
                               "must be unique", host=message["host"], pid=message["pid"],
                               name=name, network=self.network)
            return
        remote = self.remotes.get(name)
        if remote is not None and remote.boot != boot:
            self.forget(name, "it restarted")
            remote = None
        if message.get("bye"):
            if remote is not None:
                self.forget(name, "it stopped")
            return
        now = self.clock.seconds()
        if remote is None:
            remote = self.remotes[name] = RemoteDispatcher(name, boot, now, message)
            self.log.info("federation: dispatcher {name!r} ({host}) is in the network",
                          name=name, host=message["host"])
            self.say_hello()
        remote.last_seen = now
        remote.hello = message
        if name in self.links:
            self.links[name].last_seen = now
        self.registry.remote_services.update(message["known"])
        self._sync_actors(remote)

    def _sync_actors(self, remote):
        link = self.link_to(remote)
        actors = {}
        for name, services, load in remote.hello["actors"]:
            actor = remote.actors.get(name)
            if actor is None or actor.via is not link or actor.services != tuple(services):
                if actor is not None:
                    self._drop(actor)
                actor = RemoteActor(name, tuple(services), remote.name, link)
                if not self.registry.add_remote(actor):
                    self.stats["federation_name_clashes"] += 1
                    self.log.warn("federation: actor {name!r} of dispatcher {remote!r} has a "
                                  "name already held here; not reachable from here",
                                  name=name, remote=remote.name)
                    continue
                link.protocol.actors.add(actor)
            actor.load = load
            actors[name] = actor
        for name, actor in remote.actors.items():
            if name not in actors:
                self._drop(actor)
        remote.actors = actors

    def _drop(self, actor):
        """Another dispatcher no longer lists ``actor`` (or lists it on a new link):
        requests it has in flight are answered by that dispatcher (its actor's loss,
        at worst) or, should its link be lost first, failed with the link."""
        self.registry.remove_remote(actor)
        if not actor.working:
            actor.via.protocol.actors.discard(actor)

    def forget(self, name, why):
        """Dispatcher ``name`` is dead or out of reach: close its link (failing what
        was in flight there) and drop its actors."""
        remote = self.remotes.pop(name, None)
        if remote is None:
            return
        self.log.warn("federation: lost dispatcher {name!r}: {why}", name=name, why=why)
        why = f"dispatcher {name} was lost: {why}"
        for actor in remote.actors.values():
            self.registry.remove_remote(actor)
            self.dispatcher.requests.worker_lost(actor, why)
        link = self.links.get(name)
        if link is not None:
            link.dropped_because = why
            link.protocol.transport.abortConnection()

    # -- links -----------------------------------------------------------------

    def link_to(self, remote, in_epoch=None):
        """The peer of the link to ``remote``, made (and its stream opened) if there is
        none for its boot; ``in_epoch``: the other end's stream it starts with."""
        link = self.links.get(remote.name)
        if link is not None and link.protocol.transport.their_boot == remote.boot:
            return link
        if link is not None:
            link.protocol.transport.abortConnection()
        self._epochs += 1
        protocol = LinkProtocol(self.dispatcher, remote.name)
        transport = LinkTransport(self.bus.publish, remote.name,
                                  f"{self.prefix}.link.{remote.name}.{self.name}", self.boot,
                                  remote.boot, self._epochs, self.bus.max_payload - HEADER.size,
                                  self._link_closed)
        if in_epoch is not None:
            transport.established(in_epoch)
        protocol.makeConnection(transport)
        self.links[remote.name] = protocol.peer
        transport.open()
        return protocol.peer

    def _link_closed(self, transport):
        name = transport.address.dispatcher
        link = self.links.get(name)
        if link is None or link.protocol.transport is not transport:
            return
        del self.links[name]
        protocol = link.protocol
        self.clock.callLater(0, protocol.connectionLost, None)

    def link_lost(self, link, why):
        """The dispatcher lost a link peer: the requests its remote actors had fail
        (``actor_lost``, or retried once when idempotent); while their dispatcher
        lives, a new link takes them over."""
        why = f"the link to dispatcher {link.link} was lost: {why}"
        for actor in link.protocol.actors:
            self.registry.remove_remote(actor)
            self.dispatcher.requests.worker_lost(actor, why)
        remote = self.remotes.get(link.link)
        if remote is not None and self.up_since is not None:
            remote.actors = {name: actor for name, actor in remote.actors.items()
                             if actor.via is not link}
            self._sync_actors(remote)

    def link_in(self, subject, data):
        """A message of the link from another dispatcher to this one."""
        sender = subject.rpartition(".")[2]
        if len(data) < HEADER.size:
            self.stats["federation_bad_messages"] += 1
            return
        their_boot, own_boot, epoch, seq = HEADER.unpack_from(data)
        if own_boot != self.boot:
            self.stats["federation_stale_messages"] += 1
            return
        remote = self.remotes.get(sender)
        if remote is None or remote.boot != their_boot:
            self.stats["federation_stale_messages"] += 1
            return
        remote.last_seen = self.clock.seconds()
        link = self.link_to(remote)
        meaning = link.protocol.transport.receive(epoch, seq, data[HEADER.size:])
        if type(meaning) is bytes:
            link.protocol.dataReceived(meaning)
        elif meaning is STALE:
            self.stats["federation_stale_messages"] += 1
        elif type(meaning) is Renew:
            link.dropped_because = f"dispatcher {sender} opened a new link"
            link.protocol.transport.abortConnection()
            self.link_to(remote, meaning.epoch)
        elif meaning is not None:
            if meaning.gap:
                self.stats["federation_gaps"] += 1
            link.dropped_because = meaning.why
            link.protocol.transport.abortConnection()

    # -- the network view ------------------------------------------------------

    def view(self):
        """What ``mmi.dispatchers`` and ``mmi.show_actors`` show of the other dispatchers."""
        now = self.clock.seconds()
        holdtime = self.dispatcher.liveness.holdtime
        return {
            "network": self.network,
            "connected": self.up_since is not None,
            "down": self.registry.federation_down,
            "dispatchers": [remote.row(now, holdtime)
                            for remote in sorted(self.remotes.values(), key=lambda r: r.name)],
            "actors": [{"name": actor.name, "services": list(actor.services),
                        "dispatcher": actor.dispatcher, "in_flight": actor.load}
                       for remote in self.remotes.values()
                       for actor in remote.actors.values()],
        }
