"""The dispatcher: the centre of the star.

Actors never talk to each other; every frame comes here.  The dispatcher
decodes only the envelope, appends its route stamp, picks the next actor and
writes the envelope with the body's bytes untouched.

This class is a thin façade over rooms of one job each: who may join
(:mod:`~actornet.dispatcher.admission`), where a request goes
(:mod:`~actornet.dispatcher.router`, no I/O), the life of a request and its one
answer (:mod:`~actornet.dispatcher.requests`), pub/sub
(:mod:`~actornet.dispatcher.topics`), draining (:mod:`~actornet.dispatcher.drain`),
the one send path (:mod:`~actornet.dispatcher.outbox`) and the holdtime rule
(:mod:`~actornet.protocols.liveness`).  Whoever only looks reads a
:meth:`Dispatcher.snapshot`.
"""

from collections import Counter

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from actornet.dispatcher import admission
from actornet.dispatcher.claims import NameHeld
from actornet.dispatcher.drain import drain
from actornet.dispatcher.flow import OutboundGate
from actornet.dispatcher.identity import SHARED
from actornet.dispatcher.journal import open_journal
from actornet.dispatcher.lifecycle import LifecycleListeners
from actornet.dispatcher.management import Management
from actornet.dispatcher.metrics import Metrics
from actornet.dispatcher.outbox import Outbox
from actornet.dispatcher.peer import DispatcherProtocol, Peer
from actornet.dispatcher.registry import Registry
from actornet.dispatcher.requests import Requests
from actornet.dispatcher.router import Router
from actornet.dispatcher.settings import DEFAULT_SETTINGS
from actornet.dispatcher.snapshot import Snapshot
from actornet.dispatcher.sweep import Sweep
from actornet.dispatcher.throttle import AuthThrottle
from actornet.dispatcher.topics import Topics
from actornet.protocols import codec, messages
from actornet.protocols.codes import (
    LIFECYCLE_TOPIC,
    SUPERVISOR_TOPIC,
    Kind,
    Status,
)
from actornet.protocols.envelope import MalformedEnvelope, check
from actornet.protocols.stamp import stamp_prefix


class Dispatcher:
    """Registers actors and routes their messages.

    @param clock: the reactor (or a ``Clock`` in tests); every timer and every
        stamp's time comes from it.
    @param settings: a :class:`~actornet.dispatcher.settings.DispatcherSettings`.
    @param endpoints: the endpoint strings it listens on (shown by ``mmi``).
    @param on_shutdown: called when ``mmi.shutdown`` is permitted; None refuses it.
    """

    log = Logger()

    def __init__(self, clock, settings=DEFAULT_SETTINGS, *, endpoints=(), on_shutdown=None):
        self.clock = clock
        self.settings = settings
        self.name = settings.name
        self.endpoints = tuple(endpoints)
        self.liveness = settings.liveness
        self.registry = Registry()
        self.stats = Counter()
        self.metrics = Metrics()
        self.outbox = Outbox(clock, settings.name, self.stats)
        self.peers = self.outbox.peers
        self.journal = open_journal(clock, settings, self.outbox, self.stats)
        self.topics = Topics(self.outbox, self.stats)
        self.topics.journal = self.journal
        management = Management(clock, self.snapshot, settings.token, on_shutdown,
                                self.announce_supervisor_event)
        self.requests = Requests(clock, settings, Router(self.registry, settings),
                                 self.outbox, management, self.metrics, self.stats,
                                 self.journal)
        self.inflight = self.requests.inflight
        self.throttle = AuthThrottle(clock)
        self.message_limit = settings.message_limit
        self.max_envelope_bytes = settings.max_envelope_bytes
        self.started_at = clock.seconds()
        self.federation = None
        self._conn_ids = 0
        self._sweeper = None
        self._closing = []
        self.lifecycle_listeners = LifecycleListeners()
        self._handlers = {
            Kind.REQUEST: self.requests.request,
            Kind.RESPONSE: self.requests.response,
            Kind.PROGRESS: self.requests.longjobs.progress,
            Kind.CANCEL: self.requests.longjobs.cancel,
            Kind.EVENT: self.topics.event,
            Kind.KEEPALIVE: self._keepalive_in,
            Kind.SUBSCRIBE: self.topics.subscribe_to,
            Kind.UNSUBSCRIBE: self.topics.unsubscribe_from,
            Kind.DISCONNECT: self._disconnect,
        }

    # -- lifecycle ---------------------------------------------------------

    def factory(self):
        """A protocol factory to listen with."""
        factory = Factory.forProtocol(lambda: DispatcherProtocol(self))
        factory.noisy = False
        return factory

    def start(self):
        """Start the sweep: ten times per holdtime, so a silent peer is dropped
        within holdtime + 10 %."""
        self._sweeper = LoopingCall(Sweep(self.clock, self.peers, self.liveness, self.settings,
                                          self.stats, self.outbox))
        self._sweeper.clock = self.clock
        self._sweeper.start(self.liveness.holdtime / 10, now=False).addErrback(
            lambda f: self.log.failure("keepalive sweep stopped", f))

    def drain(self, timeout):
        """Stop taking new requests and let those in flight finish (see
        :func:`~actornet.dispatcher.drain.drain`); fires with how many were failed."""
        return drain(self.clock, self.requests, self.inflight, timeout)

    def stop(self):
        """Stop timers, close every connection and the journal.

        @return: a Deferred that fires once every connection is closed and the
            journal's last bags are written.
        """
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        self.inflight.stop()
        closed = Deferred()
        if not self.peers:
            closed.callback(None)
        else:
            self._closing.append(closed)
            for peer in list(self.peers):
                peer.protocol.hangUp()
        if self.journal is None:
            return closed
        return closed.addCallback(lambda _: self.journal.close())

    def snapshot(self):
        """A read-only :class:`~actornet.dispatcher.snapshot.Snapshot` of now."""
        return Snapshot(
            name=self.name, host=self.outbox.host, pid=self.outbox.pid,
            now=self.clock.seconds(), started_at=self.started_at, settings=self.settings,
            endpoints=self.endpoints, in_flight=len(self.inflight),
            connections=sum(1 for peer in self.peers if peer.link is None),
            peers=tuple(peer.view() for peer in self.registry.by_name.values()
                        if peer.via is peer),
            subscriptions=self.topics.names(), counters=dict(self.stats),
            **self.metrics.copy(),
            federation=self.federation.view() if self.federation is not None else None,
            known_services=frozenset(self.registry.known_services
                                     | self.registry.remote_services))

    # -- connections -------------------------------------------------------

    def connected(self, protocol):
        """A new connection: it may send one small frame (REGISTER) within
        ``register_timeout`` seconds; throttled addresses are closed at once."""
        peer = self._new_peer(protocol, address=_address(protocol.transport))
        self.stats["connections"] += 1
        if self.throttle.blocked(peer.address):
            self.stats["auth_throttled"] += 1
            protocol.stopReading()
            protocol.transport.abortConnection()
            return peer
        protocol.max_frame = self.settings.unregistered_max_frame_bytes
        peer.register_timer = self.clock.callLater(self.settings.register_timeout,
                                                   self._register_timeout, peer)
        return peer

    def linked(self, protocol, name):
        """A federation link to dispatcher ``name`` (see
        :mod:`~actornet.dispatcher.federation`): a peer admitted by the federation,
        not by REGISTER, and not an actor of this star."""
        peer = self._new_peer(protocol, name=name, user=name, identity=SHARED, link=name,
                              address=f"dispatcher {name}", stamp_prefix=stamp_prefix(name))
        self.stats["links"] += 1
        return peer

    def _new_peer(self, protocol, **fields):
        """The record of a new connection, with its connection id and outbound gate."""
        self._conn_ids += 1
        now = self.clock.seconds()
        gate = OutboundGate(protocol, self.settings.outbound_limit_bytes, self.stats,
                            self.clock)
        peer = Peer(self._conn_ids, protocol, gate, now, last_seen=now, last_sent=now,
                    **fields)
        self.peers.add(peer)
        return peer

    def _register_timeout(self, peer):
        peer.register_timer = None
        self.stats["register_timeout"] += 1
        self._close_with(peer, Status.UNAUTHORIZED,
                         f"no REGISTER within {self.settings.register_timeout:g} s")

    def lost(self, peer, reason):
        """A connection ended: fail or re-route what its actor had, forget it."""
        self.peers.discard(peer)
        if self.federation is not None and peer.link is None and peer.name is not None \
                and self.registry.by_name.get(peer.name) is peer:
            self.federation.claims.release(peer.name)
        if peer.register_timer is not None and peer.register_timer.active():
            peer.register_timer.cancel()
        peer.outbound.stopProducing()
        self.registry.remove(peer)
        self.topics.forget(peer)
        self.stats["discarded_asks"] += self.requests.longjobs.asker_gone(peer)
        if peer.leaving:
            why = "it said DISCONNECT"
        else:
            why = peer.dropped_because or (reason.getErrorMessage() if reason is not None
                                           else "closed")
        self.requests.worker_lost(peer, why)
        if peer.link is not None:
            self.federation.link_lost(peer, why)
        if peer.services:
            self.log.info("actor {name} left ({why})", name=peer.name, why=why)
            self._lifecycle("left" if peer.leaving else "died", peer, why)
            if self.federation is not None:
                self.federation.changed()
        if not self.peers and self._closing:
            closing, self._closing = self._closing, []
            for closed in closing:
                closed.callback(None)

    def _lifecycle(self, event, peer, reason=None):
        """Publish that an actor joined, left (said DISCONNECT) or died (its
        connection was lost or its keepalives lapsed): the death watch."""
        data = {"event": event, "name": peer.name, "services": list(peer.services),
                "connection": peer.conn_id, "dispatcher": self.name}
        if reason is not None:
            data["reason"] = reason
        route = []
        self.outbox.stamp(route, peer, self.clock.seconds())
        self.publish(messages.event(LIFECYCLE_TOPIC, route, self.name), codec.encode(data))

    # -- frames ------------------------------------------------------------

    def frame(self, peer, envelope_bytes, body):
        now = peer.last_seen
        envelope_size = len(envelope_bytes)
        size = envelope_size + len(body) + 8
        peer.bytes_in += size
        if envelope_size > self.max_envelope_bytes:
            self.stats["too_large"] += 1
            self._close_with(peer, Status.TOO_LARGE,
                             f"an envelope of {envelope_size} bytes exceeds the limit of "
                             f"{self.max_envelope_bytes} bytes")
            return
        try:
            envelope = codec.decode(envelope_bytes)
            kind = check(envelope)
        except MalformedEnvelope as e:
            if peer.name is not None and e.answer_id is not None:
                self.stats["malformed"] += 1
                self.requests.malformed_answer(peer, e.answer_id, e)
            elif peer.name is None or e.request_id is None:
                self.refuse(peer, e)
            else:
                self.requests.malformed_request(peer, e)
            return
        except ValueError as e:
            self.refuse(peer, e)
            return
        if peer.name is None:
            if kind is Kind.REGISTER and not peer.claiming:
                self._register(peer, envelope)
            else:
                self._close_with(peer, Status.UNAUTHORIZED, "register before sending anything else")
            return
        handler = self._handlers.get(kind)
        if handler is None:
            self._close_with(peer, Status.MALFORMED_ENVELOPE,
                             f"a dispatcher does not accept {kind.name} frames")
            return
        if size - 4 > self.message_limit:
            self.requests.too_large(peer, kind, envelope, size - 4, self.message_limit)
            return
        handler(peer, envelope, body, now)

    def frame_too_large(self, peer, length):
        self.stats["too_large"] += 1
        limit = peer.protocol.max_frame
        self._close_with(peer, Status.TOO_LARGE,
                         f"frame of {length} bytes exceeds the limit of {limit} bytes"
                         + ("" if peer.name else " before REGISTER"))

    def refuse(self, peer, error):
        """A frame could not be decoded: say why, then hang up on its sender."""
        self.stats["malformed"] += 1
        self._close_with(peer, Status.MALFORMED_ENVELOPE, f"malformed envelope: {error}")

    def _close_with(self, peer, status, message):
        self.log.warn("closing {peer}: {status}: {message}",
                      peer=peer.label, status=status.label, message=message)
        self.outbox.send(peer, messages.refused(status, message))
        peer.protocol.stopReading()
        peer.protocol.hangUp()

    # -- registration and liveness ----------------------------------------

    def _register(self, peer, envelope):
        admitted = admission.admit(envelope, self.settings, self.registry, peer)
        if type(admitted) is admission.Refusal:
            if admitted.counter is not None:
                self.stats[admitted.counter] += 1
            if admitted.counter == "unauthorized":
                self.throttle.failed(peer.address)
            self._close_with(peer, admitted.status, admitted.message)
            return
        if self.federation is not None:
            peer.claiming = True
            self.federation.claims.claim(envelope["name"]).addCallbacks(
                lambda _: self._claimed(peer, envelope, admitted),
                lambda failure: self._claim_failed(peer, envelope["name"], failure))
            return
        self._admitted(peer, envelope, admitted)

    def _claimed(self, peer, envelope, identity):
        """The federation gave ``peer`` its name network-wide."""
        name = envelope["name"]
        if peer not in self.peers:
            self.federation.claims.release(name)
        elif name in self.registry.by_name:
            self.stats["name_taken"] += 1
            self._close_with(peer, Status.NAME_TAKEN, f"the name {name!r} is taken")
        else:
            self._admitted(peer, envelope, identity)

    def _claim_failed(self, peer, name, failure):
        if peer not in self.peers:
            return
        if failure.check(NameHeld):
            self.stats["name_taken"] += 1
            self._close_with(peer, Status.NAME_TAKEN, failure.getErrorMessage())
        else:
            self.log.failure("claiming {name!r} failed", failure, name=name)
            self._close_with(peer, Status.FAILURE, f"could not claim the name {name!r}")

    def _admitted(self, peer, envelope, admitted):
        if peer.register_timer is not None and peer.register_timer.active():
            peer.register_timer.cancel()
        peer.register_timer = None
        peer.protocol.max_frame = self.settings.max_frame_bytes
        peer.identity = admitted
        peer.name = envelope["name"]
        peer.user = peer.name if admitted is SHARED else admitted.name
        peer.stamp_prefix = stamp_prefix(peer.name)
        peer.services = tuple(dict.fromkeys(envelope.get("svcs", [])))
        self.registry.add(peer)
        self.outbox.send(peer, messages.ready(peer.conn_id, peer.name, self.liveness.interval,
                                              self.message_limit))
        if peer.services:
            self.log.info("actor {name} joined (services: {services})",
                          name=peer.name, services=", ".join(peer.services))
            self._lifecycle("joined", peer)
            if self.federation is not None:
                self.federation.changed()

    def _keepalive_in(self, peer, envelope, body, now):
        peer.keepalives_in += 1

    def _disconnect(self, peer, envelope, body, now):
        peer.leaving = True
        peer.protocol.hangUp()

    # -- events ------------------------------------------------------------

    def announce_supervisor_event(self, data):
        """Publish a supervisor's restart or give-up on its topic, as the dispatcher."""
        self.publish(messages.event(SUPERVISOR_TOPIC, [], self.name), codec.encode(data))

    def publish(self, envelope, body=b""):
        """Send an event (from the dispatcher itself) to every subscriber of its topic,
        and tell the listeners in this process (:mod:`~actornet.dispatcher.lifecycle`)."""
        self.lifecycle_listeners.tell(envelope, body)
        self.topics.publish(envelope, body)


def _address(transport):
    """The host a connection comes from (throttling is per host), or its text."""
    peer = transport.getPeer()
    return getattr(peer, "host", None) or str(peer)
