"""The dispatcher: the centre of the star.

Actors never talk to each other; every frame comes here.  The dispatcher
decodes only the envelope, appends its route stamp, picks the next actor and
writes the envelope with the body's bytes untouched.  It keeps the in-flight
table, so that every request it accepted is answered exactly once: by its
actor, or by the dispatcher with TIMEOUT, ACTOR_LOST, NO_WORKERS or BUSY.
"""

import hmac
import math
import os
import socket
from collections import Counter

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from actornet.dispatcher.flow import OutboundGate
from actornet.dispatcher.gather import Gather
from actornet.dispatcher.inflight import InFlight, Pending
from actornet.dispatcher.management import SERVICE as MANAGEMENT
from actornet.dispatcher.management import Management, ManagementError
from actornet.dispatcher.metrics import Metrics
from actornet.dispatcher.peer import DispatcherProtocol, Peer
from actornet.dispatcher.registry import Registry, RoutingError
from actornet.dispatcher.settings import DEFAULT_SETTINGS
from actornet.protocols import codec
from actornet.protocols.codes import LIFECYCLE_TOPIC, Kind, Status
from actornet.protocols.envelope import check
from actornet.protocols.framing import frame_parts
from actornet.protocols.stamp import stamp_bytes

MAX_NAME = 200


def _seconds(value):
    """``value`` as a finite float, or None when it is not one."""
    try:
        seconds = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def _busy(workers):
    names = ", ".join(w.name for w in workers)
    return f"{names} over the outbound limit (a slow reader); not sent"


class Dispatcher:
    """Registers actors and routes their messages.

    @param clock: the reactor (or a ``Clock`` in tests); every timer and every
        stamp's time comes from it.
    @param token: when set, a peer must present it in REGISTER or be refused.
    """

    log = Logger()

    def __init__(self, clock, settings=DEFAULT_SETTINGS):
        self.clock = clock
        self.settings = settings
        self.name = settings.name
        self.token = settings.token
        self.max_frame = settings.max_frame_bytes
        self.hop_limit = settings.hop_limit
        self.default_timeout = settings.request_timeout
        self.max_timeout = settings.max_timeout
        self.keepalive_interval = settings.keepalive_interval
        self.keepalive_multiplier = settings.keepalive_multiplier
        self.outbound_limit = settings.outbound_limit_bytes
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.registry = Registry()
        self.inflight = InFlight(clock, self._expired)
        self.peers = set()
        self.topics = {}
        self.stats = Counter()
        self.metrics = Metrics()
        self.management = Management(self)
        self.started_at = clock.seconds()
        self._seq = 0
        self._conn_ids = 0
        self._keepalive = None
        self.draining = False
        self.watchers = []
        self._closing = []
        self._handlers = {
            Kind.REQUEST: self._request,
            Kind.RESPONSE: self._response,
            Kind.EVENT: self._event,
            Kind.KEEPALIVE: self._keepalive_in,
            Kind.SUBSCRIBE: self._subscribe,
            Kind.UNSUBSCRIBE: self._unsubscribe,
            Kind.DISCONNECT: self._disconnect,
        }

    # -- lifecycle ---------------------------------------------------------

    def factory(self):
        """A protocol factory to listen with."""
        factory = Factory.forProtocol(lambda: DispatcherProtocol(self))
        factory.noisy = False
        return factory

    def start(self):
        """Start the keepalive sweep."""
        self._keepalive = LoopingCall(self._sweep)
        self._keepalive.clock = self.clock
        self._keepalive.start(self.keepalive_interval, now=False).addErrback(
            lambda f: self.log.failure("keepalive sweep stopped", f))

    def drain(self, timeout):
        """Stop taking new requests and let those in flight finish.

        New requests are answered SHUTTING_DOWN at once (forwards of requests
        already in flight still go through).  After ``timeout`` seconds, what
        is left is failed with SHUTTING_DOWN.

        @return: a Deferred firing with the number of requests that had to be
            failed (0 when everything finished in time).
        """
        self.draining = True
        drained = Deferred()
        if not len(self.inflight):
            drained.callback(0)
            return drained

        def finished():
            self.inflight.on_empty = None
            if deadline.active():
                deadline.cancel()
            if not drained.called:
                drained.callback(0)

        def expired():
            self.inflight.on_empty = None
            left = self.inflight.take_all()
            for pending in left:
                self._answer_error(pending, Status.SHUTTING_DOWN,
                                   f"the dispatcher shut down before {pending.worker.label} "
                                   "answered")
            drained.callback(len(left))

        deadline = self.clock.callLater(timeout, expired)
        self.inflight.on_empty = finished
        self.log.info("draining {count} requests in flight (up to {timeout}s)",
                      count=len(self.inflight), timeout=timeout)
        return drained

    def stop(self):
        """Stop timers and close every connection.

        @return: a Deferred that fires once every connection is closed.
        """
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self.inflight.stop()
        closed = Deferred()
        if not self.peers:
            closed.callback(None)
            return closed
        self._closing.append(closed)
        for peer in list(self.peers):
            peer.protocol.transport.loseConnection()
        return closed

    # -- connections -------------------------------------------------------

    def connected(self, protocol):
        self._conn_ids += 1
        now = self.clock.seconds()
        gate = OutboundGate(protocol.transport, self.outbound_limit, self.stats)
        peer = Peer(self._conn_ids, protocol, gate, now, last_seen=now, last_sent=now)
        self.peers.add(peer)
        self.stats["connections"] += 1
        return peer

    def lost(self, peer, reason):
        """A connection ended: fail or re-route what its actor had, forget it."""
        self.peers.discard(peer)
        peer.outbound.stopProducing()
        self.registry.remove(peer)
        for topic in peer.topics:
            subscribers = self.topics.get(topic)
            if subscribers is not None:
                subscribers.discard(peer)
                if not subscribers:
                    del self.topics[topic]
        self.stats["discarded_asks"] += self.inflight.orphan(peer)
        if peer.leaving:
            why = "it said DISCONNECT"
        else:
            why = reason.getErrorMessage() if reason is not None else "closed"
        for pending in self.inflight.working_on(peer):
            if pending.retryable and not pending.retried and self._retry(pending):
                continue
            self.stats["actor_lost"] += 1
            self._answer_error(pending, Status.ACTOR_LOST,
                               f"actor {peer.label} was lost before answering ({why})")
        if peer.services:
            self.log.info("actor {name} left ({why})", name=peer.name, why=why)
            self._lifecycle("left" if peer.leaving else "died", peer, why)
        self._changed()
        if not self.peers and self._closing:
            closing, self._closing = self._closing, []
            for closed in closing:
                closed.callback(None)

    def _lifecycle(self, event, peer, reason=None):
        """Publish that an actor joined, left (said DISCONNECT) or died (its
        connection was lost or its keepalives lapsed): the death watch."""
        data = {"event": event, "name": peer.name, "services": list(peer.services),
                "connection": peer.conn_id}
        if reason is not None:
            data["reason"] = reason
        route = []
        self._stamp(route, peer, self.clock.seconds())
        self.publish({"k": Kind.EVENT, "top": LIFECYCLE_TOPIC, "r": route, "src": self.name},
                     codec.encode(data))

    def _changed(self):
        """Tell watchers (the test kit) that the dispatcher's state may have changed."""
        for watcher in list(self.watchers):
            watcher()

    # -- frames ------------------------------------------------------------

    def frame(self, peer, envelope_bytes, body):
        now = self.clock.seconds()
        peer.last_seen = now
        peer.bytes_in += len(envelope_bytes) + len(body) + 8
        try:
            envelope = codec.decode(envelope_bytes)
            kind = check(envelope)
        except ValueError as e:
            self.refuse(peer, e)
            return
        if peer.name is None:
            if kind is Kind.REGISTER:
                self._register(peer, envelope)
            else:
                self._close_with(peer, Status.UNAUTHORIZED, "register before sending anything else")
            return
        handler = self._handlers.get(kind)
        if handler is None:
            self._close_with(peer, Status.MALFORMED_ENVELOPE,
                             f"a dispatcher does not accept {kind.name} frames")
            return
        handler(peer, envelope, body, now)
        if self.watchers:
            self._changed()

    def frame_too_large(self, peer, length):
        self.stats["too_large"] += 1
        self._close_with(peer, Status.TOO_LARGE,
                         f"frame of {length} bytes exceeds the limit of {self.max_frame} bytes")

    def refuse(self, peer, error):
        """A frame could not be decoded: say why, then hang up on its sender."""
        self.stats["malformed"] += 1
        self._close_with(peer, Status.MALFORMED_ENVELOPE, f"malformed envelope: {error}")

    def _close_with(self, peer, status, message):
        self.log.warn("closing {peer}: {status} {message}",
                      peer=peer.label, status=status.label, message=message)
        self._send(peer, {"k": Kind.ERROR, "st": status, "err": [status.label, message]})
        peer.protocol.stopReading()
        peer.protocol.transport.loseConnection()

    # -- registration and liveness ----------------------------------------

    def _register(self, peer, envelope):
        if self.token is not None:
            offered = envelope.get("tok", "").encode()
            if not hmac.compare_digest(offered, self.token.encode()):
                self.stats["unauthorized"] += 1
                self._close_with(peer, Status.UNAUTHORIZED,
                                 "missing or wrong token" if offered else "a token is required")
                return
        name = envelope["name"]
        services = envelope.get("svcs", [])
        if not 0 < len(name) <= MAX_NAME or not all(isinstance(s, str) and s for s in services):
            self._close_with(peer, Status.MALFORMED_ENVELOPE,
                             "a name is 1 to 200 characters and services are non-empty text")
            return
        holder = self.registry.by_name.get(name)
        if holder is not None:
            self.stats["name_taken"] += 1
            self._close_with(peer, Status.NAME_TAKEN,
                             f"the name {name!r} is taken by connection {holder.conn_id}")
            return
        peer.name = name
        peer.services = tuple(dict.fromkeys(services))
        self.registry.add(peer)
        self._send(peer, {"k": Kind.READY, "id": peer.conn_id, "name": name,
                          "ka": self.keepalive_interval})
        if peer.services:
            self.log.info("actor {name} joined (services: {services})",
                          name=name, services=", ".join(peer.services))
            self._lifecycle("joined", peer)
        self._changed()

    def _keepalive_in(self, peer, envelope, body, now):
        peer.keepalives_in += 1

    def _disconnect(self, peer, envelope, body, now):
        peer.leaving = True
        peer.protocol.transport.loseConnection()

    def _sweep(self):
        """Drop peers silent for too long; send keepalives on idle links."""
        now = self.clock.seconds()
        holdtime = self.keepalive_interval * self.keepalive_multiplier
        for peer in list(self.peers):
            if peer.outbound.reading_paused:
                peer.last_seen = now
            elif now - peer.last_seen > holdtime:
                self.stats["keepalive_expired"] += 1
                self.log.warn("{peer} sent nothing for {silent:.1f}s (holdtime {holdtime:.3g}s); "
                              "dropping it", peer=peer.label, silent=now - peer.last_seen,
                              holdtime=holdtime)
                peer.protocol.transport.abortConnection()
                continue
            if now - peer.last_sent >= self.keepalive_interval:
                peer.keepalives_out += 1
                self._send(peer, {"k": Kind.KEEPALIVE})

    # -- requests and answers ---------------------------------------------

    def _stamp(self, route, peer, arrived):
        self._seq += 1
        route.append(stamp_bytes(self.name, self.host, self.pid, peer.conn_id, self._seq,
                                 arrived, self.clock.seconds(), len(route) + 1))

    def _request(self, peer, envelope, body, now):
        route = envelope.setdefault("r", [])
        tell = envelope.get("nr", False)
        if not tell and "fwd" in envelope:
            origin = self.inflight.get(envelope["fwd"])
            if origin is None or origin.worker is not peer:
                self._reply_error(peer, envelope, Status.FAILURE,
                                  f"cannot forward request {envelope['fwd']}: it is not "
                                  f"in flight at {peer.label}")
                return
            self.inflight.pop(origin.rid)
            peer.handled += 1
            asker, asker_id = origin.asker, origin.asker_id
            ttl = origin.deadline - now
        else:
            origin = None
            asker, asker_id = peer, envelope["id"]
            ttl = envelope.get("ttl", self.default_timeout)
            if self.draining and envelope["svc"] != MANAGEMENT:
                self.stats["refused_draining"] += 1
                self._route_error(asker, asker_id, tell, None, Status.SHUTTING_DOWN,
                                  "the dispatcher is shutting down and takes no new requests")
                return
        if len(route) >= self.hop_limit:
            self.stats["hop_limit"] += 1
            self._route_error(asker, asker_id, tell, origin, Status.HOP_LIMIT_EXCEEDED,
                              f"the bag made {len(route)} hops (limit {self.hop_limit})")
            return
        ttl = _seconds(ttl)
        if ttl is None:
            self._route_error(asker, asker_id, tell, origin, Status.MALFORMED_ENVELOPE,
                              "ttl must be a finite number of seconds")
            return
        self._stamp(route, peer, now)
        service = envelope["svc"]
        if service == MANAGEMENT:
            self._manage(asker, asker_id, tell, envelope, body)
            return
        target = envelope.get("tgt", "any")
        try:
            workers = self._select(service, target)
        except RoutingError as e:
            self.metrics.refused(service, e.status)
            self._route_error(asker, asker_id, tell, origin, e.status, e.message)
            return
        busy = [w for w in workers if w.outbound.over_limit] if target == "all" else []
        if busy:
            workers = [w for w in workers if not w.outbound.over_limit]
            self.stats["busy"] += len(busy)
        envelope["src"] = peer.name
        envelope.pop("fwd", None)
        if tell:
            envelope["id"] = 0
            parts = frame_parts(codec.encode(envelope), body)
            for worker in workers:
                self._write(worker, parts, peer)
            if busy:
                self._route_error(asker, asker_id, tell, None, Status.BUSY, _busy(busy))
            return
        ttl = min(max(ttl, 0.0), self.max_timeout)
        gather = origin.gather if origin is not None else None
        if gather is None and (target == "all" or isinstance(target, list)):
            gather = Gather(asker, asker_id, [w.name for w in workers + busy], route)
            for worker in busy:
                gather.add(worker.name, Status.BUSY, error=[Status.BUSY.label, _busy([worker])])
            if gather.complete:
                self._finish(gather)
                return
        retryable = envelope.get("idem", False) and target == "any" and gather is None
        for worker in workers:
            rid = self.inflight.new_id()
            member = origin.member if origin is not None else worker.name
            pending = Pending(rid, asker, asker_id, worker, now + ttl, service,
                              envelope["m"], retryable, gather=gather, member=member,
                              started=now)
            if retryable:
                pending.envelope, pending.body = dict(envelope, r=list(route)), body
            self.inflight.add(pending)
            envelope["id"] = rid
            envelope["ttl"] = ttl
            self._send(worker, envelope, body, peer)

    def _manage(self, asker, asker_id, tell, envelope, body):
        """Answer an ``mmi`` request from the dispatcher's own state."""
        try:
            data = codec.decode(bytes(body)) if len(body) else {}
            if not isinstance(data, dict):
                raise ValueError(f"a body is a map, not {type(data).__name__}")
        except ValueError as e:
            self._route_error(asker, asker_id, tell, None, Status.MALFORMED_BODY, str(e))
            return
        try:
            result = self.management.answer(envelope["m"], data)
        except ManagementError as e:
            self._route_error(asker, asker_id, tell, None, e.status, str(e))
            return
        if tell:
            return
        route = envelope["r"]
        self._stamp(route, asker, self.clock.seconds())
        self._send(asker, {"k": Kind.RESPONSE, "id": asker_id, "st": Status.SUCCESS,
                           "r": route, "src": self.name}, codec.encode(result))

    def _select(self, service, target):
        registry = self.registry
        if target == "any":
            return [registry.least_busy(service)]
        if target == "all":
            return list(registry.workers(service))
        names = [target] if isinstance(target, str) else target
        if not names or not all(isinstance(n, str) for n in names):
            raise RoutingError(Status.MALFORMED_ENVELOPE,
                               "a target is 'any', 'all', a name or a list of names")
        workers = registry.named(service, names)
        for worker in workers:
            if worker.outbound.over_limit:
                raise RoutingError(Status.BUSY, f"actor {worker.name} is over its outbound limit")
        return workers

    def _response(self, peer, envelope, body, now):
        pending = self.inflight.get(envelope["id"])
        if pending is None or pending.worker is not peer:
            self._dead_letter(peer, envelope, "answer to a request that is no longer in flight")
            return
        self.inflight.pop(pending.rid)
        peer.handled += 1
        status = envelope["st"]
        self.metrics.answered(pending.service, peer.name, status, now - pending.started)
        if pending.gather is not None:
            self._gathered(pending, status, body, envelope.get("err"))
            return
        if pending.asker is None:
            self.stats["discarded_answers"] += 1
            return
        route = envelope.setdefault("r", [])
        self._stamp(route, peer, now)
        envelope["id"] = pending.asker_id
        envelope["src"] = peer.name
        self._send(pending.asker, envelope, body, peer)

    def _gathered(self, pending, status, body=b"", error=None):
        gather = pending.gather
        gather.add(pending.member, status, body, error)
        if gather.complete:
            self._finish(gather)

    def _finish(self, gather):
        """Send a complete gather's combined answer to its asker, if still there."""
        if gather.asker is None or gather.asker not in self.peers:
            self.stats["discarded_answers"] += 1
            return
        route = gather.route
        self._stamp(route, gather.asker, self.clock.seconds())
        self._send(gather.asker, {"k": Kind.RESPONSE, "id": gather.asker_id,
                                  "st": Status.SUCCESS, "r": route, "src": self.name},
                   gather.body())

    def _retry(self, pending):
        """Send an idempotent request whose actor was lost to another actor, once."""
        try:
            worker = self.registry.least_busy(pending.service)
        except RoutingError:
            return False
        envelope = pending.envelope
        rid = self.inflight.new_id()
        retry = Pending(rid, pending.asker, pending.asker_id, worker, pending.deadline,
                        pending.service, pending.method, True, True, envelope, pending.body,
                        pending.gather, pending.member, pending.started)
        self.inflight.add(retry)
        envelope["id"] = rid
        envelope["ttl"] = max(0.0, pending.deadline - self.clock.seconds())
        self.stats["retried"] += 1
        self._send(worker, envelope, pending.body)
        return True

    def _expired(self, pending):
        self.stats["timeouts"] += 1
        self._answer_error(pending, Status.TIMEOUT,
                           f"{pending.worker.label} did not answer {pending.service}."
                           f"{pending.method} before its deadline")

    def _answer_error(self, pending, status, message):
        self.metrics.answered(pending.service, pending.worker.name, status,
                              self.clock.seconds() - pending.started)
        if pending.gather is not None:
            self._gathered(pending, status, error=[status.label, message])
        elif pending.asker is not None:
            self._send(pending.asker, {"k": Kind.RESPONSE, "id": pending.asker_id, "st": status,
                                       "err": [status.label, message], "src": self.name})

    def _route_error(self, asker, asker_id, tell, origin, status, message):
        """Answer a request nobody can take, at once."""
        self.stats["unroutable"] += 1
        if origin is not None and origin.gather is not None:
            self._answer_error(origin, status, message)
        elif asker is None:
            self.stats["discarded_answers"] += 1
        elif tell:
            self._send(asker, {"k": Kind.ERROR, "id": asker_id, "st": status,
                               "err": [status.label, message]})
        else:
            self._send(asker, {"k": Kind.RESPONSE, "id": asker_id, "st": status,
                               "err": [status.label, message], "src": self.name})

    def _reply_error(self, peer, envelope, status, message):
        self._route_error(peer, envelope.get("id", 0), envelope.get("nr", False), None,
                          status, message)

    def _dead_letter(self, peer, envelope, why):
        self.stats["dead_letters"] += 1
        self.log.debug("dead letter from {peer}: {why} ({envelope})",
                       peer=peer.label, why=why, envelope=envelope)

    # -- events ------------------------------------------------------------

    def _subscribe(self, peer, envelope, body, now):
        topic = envelope["top"]
        self.topics.setdefault(topic, set()).add(peer)
        peer.topics.add(topic)

    def _unsubscribe(self, peer, envelope, body, now):
        topic = envelope["top"]
        peer.topics.discard(topic)
        subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.discard(peer)
            if not subscribers:
                del self.topics[topic]

    def _event(self, peer, envelope, body, now):
        route = envelope.setdefault("r", [])
        if len(route) >= self.hop_limit:
            self._dead_letter(peer, envelope, "event over the hop limit")
            return
        self._stamp(route, peer, now)
        envelope["src"] = peer.name
        self.publish(envelope, body, sender=peer)

    def publish(self, envelope, body=b"", sender=None):
        """Send an event to every subscriber of its topic."""
        subscribers = self.topics.get(envelope["top"])
        if not subscribers:
            self.stats["events_unheard"] += 1
            return
        parts = frame_parts(codec.encode(envelope), body)
        for subscriber in list(subscribers):
            self._write(subscriber, parts, sender)

    # -- writing -----------------------------------------------------------

    def _send(self, peer, envelope, body=b"", sender=None):
        self._write(peer, frame_parts(codec.encode(envelope), body), sender)

    def _write(self, peer, parts, sender=None):
        transport = peer.protocol.transport
        if transport is None or peer not in self.peers:
            self.stats["dead_letters"] += 1
            return
        size = len(parts[1]) + len(parts[2]) + 8
        transport.writeSequence(parts)
        peer.bytes_out += size
        peer.last_sent = self.clock.seconds()
        peer.outbound.wrote(size, sender.outbound if sender is not None else None)
