"""The life of a request at the dispatcher, from arrival to its one answer.

A request is checked and sent to the actors the router chose, each copy entered
in the in-flight table; it leaves the table exactly once: answered by its
actor, timed out, cancelled, failed (or retried once, when idempotent) because its actor
was lost, or failed by a drain.  Answers of an ``all`` or list request are
combined by a :class:`~actornet.dispatcher.gather.Gather`.  ``mmi`` and
``journal`` requests are answered by the dispatcher itself.  With a journal,
every request and answer routed here (a gathered answer once combined) is
recorded in it (one hook each).
"""

import attrs
from twisted.logger import Logger

from actornet.dispatcher.admission import Refusal
from actornet.dispatcher.gather import Gather
from actornet.dispatcher.inflight import InFlight, Pending
from actornet.dispatcher.journal_service import SERVICE as JOURNAL
from actornet.dispatcher.journal_service import JournalService
from actornet.dispatcher.longjobs import LongJobs
from actornet.dispatcher.management import SERVICE as MANAGEMENT
from actornet.dispatcher.management import ManagementError
from actornet.dispatcher.router import busy_message
from actornet.dispatcher.routes import described, extends, forged, fresh_route, hop_names
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import frame_parts


class Requests:
    """Routes requests and answers; every collaborator is given at construction."""

    log = Logger()

    def __init__(self, clock, settings, router, outbox, management, metrics, stats,
                 journal=None):
        self.clock = clock
        self.settings = settings
        self.name = settings.name
        self.router = router
        self.inflight = InFlight(clock, self.expired)
        self.outbox = outbox
        self.management = management
        self.metrics = metrics
        self.stats = stats
        self.journal = journal
        self.journal_service = JournalService(journal)
        self.answered_here = {MANAGEMENT: self._manage, JOURNAL: self._journal}
        self.draining = False
        self.longjobs = LongJobs(self.inflight, outbox, stats, self.dead_letter)

    # -- requests ------------------------------------------------------------

    def request(self, peer, envelope, body, now):
        route = envelope.setdefault("r", [])
        tell = envelope.get("nr", False)
        service = envelope["svc"]
        if not tell and "fwd" in envelope:
            origin = self.inflight.get(envelope["fwd"])
            refusal = self._forward_refusal(peer, envelope, origin)
            if refusal is not None:
                self.refuse(peer, envelope.get("id", 0), tell, None, refusal)
                return
            self.inflight.pop(origin.rid)
            peer.handled += 1
            self.metrics.forwarded(origin.service, peer.name, now - origin.started)
            asker, asker_id = origin.asker, origin.asker_id
            ttl = self.router.check(len(route), origin.deadline - now)
        else:
            origin = None
            asker, asker_id = peer, envelope["id"]
            if peer.link is None:
                fresh_route(route, peer)
            ttl = self._admit(peer, service, len(route), envelope.get("ttl"))
        if type(ttl) is Refusal:
            self.refuse(asker, asker_id, tell, origin, ttl)
            return
        self.outbox.stamp(route, peer, now)
        if service in self.answered_here:
            self.answered_here[service](asker, asker_id, tell, envelope, body)
            return
        if self.journal is not None:
            self.journal.record(envelope, body, service, envelope["m"])
        target = envelope.pop("tgt", "any")
        choice = self.router.choose(service, target, idempotent=envelope.get("idem", False))
        if type(choice) is Refusal:
            self.metrics.refused(service, choice.status, asker.user)
            self.refuse(asker, asker_id, tell, origin, choice)
            return
        if choice.busy:
            self.stats["busy"] += len(choice.busy)
        if peer.link is None:
            envelope["src"] = peer.name
        envelope.pop("fwd", None)
        if tell:
            envelope["id"] = 0
            parts = frame_parts(codec.encode(envelope), body)
            for worker in choice.workers:
                if worker.via is worker:
                    self.outbox.write(worker, parts, peer)
                else:
                    self._send_remote(worker, envelope, body, peer)
            if choice.busy:
                self.refuse(asker, asker_id, tell, None,
                            Refusal(Status.BUSY, busy_message(choice.busy)))
            return
        gather = origin.gather if origin is not None else None
        if gather is None and choice.gathered:
            gather = Gather(asker, asker_id, [w.name for w in choice.workers + choice.busy],
                            route, service, envelope["m"])
            for worker in choice.busy:
                gather.add(worker.name, Status.BUSY,
                           error=[Status.BUSY.label, busy_message([worker])])
            if gather.complete:
                self._finish(gather)
                return
        retryable = (choice.retryable and gather is None
                     and len(body) <= self.settings.max_retry_body_bytes)
        sent = tuple(route)
        for worker in choice.workers:
            rid = self.inflight.new_id()
            member = origin.member if gather is not None and origin is not None \
                and gather is origin.gather else worker.name
            pending = Pending(rid, asker, asker_id, worker, now + ttl, service,
                              envelope["m"], retryable, gather=gather, member=member,
                              started=now, route=sent)
            if retryable:
                pending.envelope, pending.body = dict(envelope, r=list(route)), body
            self.inflight.add(pending)
            envelope["id"] = rid
            envelope["ttl"] = ttl
            if worker.via is worker:
                self.outbox.send(worker, envelope, body, peer)
            else:
                self._send_remote(worker, envelope, body, peer)

    def _send_remote(self, worker, envelope, body, requester=None):
        """Send a request to another dispatcher's actor: through the link to its
        dispatcher, naming the actor as the target (for that send only)."""
        envelope["tgt"] = worker.name
        self.outbox.send(worker.via, envelope, body, requester)
        del envelope["tgt"]

    def _admit(self, peer, service, hops, ttl):
        """The deadline of a new request from ``peer``, or why it is refused.  A
        federation link's askers were admitted by their own dispatcher."""
        if peer.link is not None:
            return self.router.check(hops, ttl, draining=self.draining)
        if not peer.identity.may("ask", service):
            return Refusal(Status.UNAUTHORIZED, peer.identity.refusal("ask", service),
                           "forbidden")
        if len(peer.asking) >= self.settings.max_in_flight_per_asker:
            return Refusal(Status.BUSY, f"{peer.label} has {len(peer.asking)} requests in "
                                        f"flight (the limit per asker)", "asker_over_limit")
        return self.router.check(hops, ttl, draining=self.draining and service != MANAGEMENT)

    def _forward_refusal(self, peer, envelope, origin):
        """Why ``peer`` may not forward as ``envelope`` says, or None."""
        if origin is None or origin.worker is not peer:
            return Refusal(Status.FAILURE, f"cannot forward request {envelope['fwd']}: it is "
                                           f"not in flight at {peer.label}")
        if not extends(envelope["r"], origin.route, peer):
            return Refusal(Status.MALFORMED_ENVELOPE, forged(peer))
        if not peer.identity.may("ask", envelope["svc"]):
            return Refusal(Status.UNAUTHORIZED, peer.identity.refusal("ask", envelope["svc"]),
                           "forbidden")
        return None

    def _manage(self, asker, asker_id, tell, envelope, body):
        """Answer an ``mmi`` request from the dispatcher's own state."""
        data = self._request_map(asker, asker_id, tell, body)
        if data is None:
            return
        try:
            result = self.management.answer(envelope["m"], data)
        except ManagementError as e:
            self.refuse(asker, asker_id, tell, None, Refusal(e.status, str(e)))
            return
        self._answer_here(asker, asker_id, tell, envelope["r"], result)

    def _journal(self, asker, asker_id, tell, envelope, body):
        """Answer a ``journal`` request once the journal has (off the reactor)."""
        data = self._request_map(asker, asker_id, tell, body)
        if data is None:
            return
        route = envelope["r"]

        def failed(failure):
            if failure.check(ManagementError):
                refusal = Refusal(failure.value.status, str(failure.value))
            else:
                refusal = Refusal(Status.FAILURE, f"the journal failed: "
                                                  f"{failure.getErrorMessage()}")
            self.refuse(asker, asker_id, tell, None, refusal)
        self.journal_service.answer(envelope["m"], data, self.outbox.seq, envelope).addCallbacks(
            lambda result: self._answer_here(asker, asker_id, tell, route, result), failed)

    def _request_map(self, asker, asker_id, tell, body):
        """The decoded map of a request the dispatcher answers, or None (refused)."""
        try:
            data = codec.decode(bytes(body)) if len(body) else {}
            if not isinstance(data, dict):
                raise ValueError(f"a body is a map, not {type(data).__name__}")
        except ValueError as e:
            self.refuse(asker, asker_id, tell, None, Refusal(Status.MALFORMED_BODY, str(e)))
            return None
        return data

    def _answer_here(self, asker, asker_id, tell, route, result):
        if tell:
            return
        self.outbox.stamp(route, asker, self.clock.seconds())
        self.outbox.send(asker, messages.response(asker_id, route, sender=self.name),
                         codec.encode(result))

    # -- answers -------------------------------------------------------------

    def response(self, peer, envelope, body, now):
        pending = self.inflight.get(envelope["id"])
        if pending is None or pending.worker.via is not peer:
            self.dead_letter(peer, envelope, "answer to a request that is no longer in flight")
            return
        self.inflight.pop(pending.rid)
        worker = pending.worker
        worker.handled += 1
        route = envelope.setdefault("r", [])
        if not extends(route, pending.route, peer):
            self.fail(pending, Status.MALFORMED_ENVELOPE, forged(peer))
            return
        status, error = envelope["st"], envelope.get("err")
        self.metrics.answered(pending.service, worker.name, status, now - pending.started,
                              pending.asker.user, error)
        if pending.gather is not None:
            self._gathered(pending, status, body, error)
            return
        asker = pending.asker
        if asker.outbound.over_limit:
            self._slow_reader(pending, len(body))
            return
        self.outbox.stamp(route, peer, now)
        if self.journal is not None:
            self.journal.record(envelope, body, pending.service, pending.method)
        envelope["id"] = pending.asker_id
        envelope["src"] = worker.name
        self.outbox.send(asker, envelope, body)

    def malformed_request(self, peer, error):
        """One request of a registered peer is malformed: fail it alone."""
        self.stats["malformed"] += 1
        message = f"malformed envelope: {error}"
        if error.request_id:
            self.outbox.send(peer, messages.failure(error.request_id, Status.MALFORMED_ENVELOPE,
                                                    message, sender=self.name))
        else:
            self.outbox.send(peer, messages.tell_failed(Status.MALFORMED_ENVELOPE, message))

    def too_large(self, peer, kind, envelope, size, limit):
        """A frame over the announced ``limit`` (it would outgrow the frame limit on its
        way): that message alone fails, TOO_LARGE at its sender."""
        self.stats["too_large"] += 1
        message = f"a frame of {size} bytes is over the limit of {limit} bytes"
        if kind is Kind.RESPONSE:
            pending = self.inflight.get(envelope["id"])
            if pending is not None and pending.worker.via is peer:
                self.inflight.pop(pending.rid)
                self.fail(pending, Status.TOO_LARGE,
                          f"the answer of {peer.label} was too large: {message}")
        elif kind is Kind.REQUEST and not envelope.get("nr"):
            self.outbox.send(peer, messages.failure(envelope["id"], Status.TOO_LARGE, message,
                                                    sender=self.name))
        else:
            self.outbox.send(peer, messages.tell_failed(Status.TOO_LARGE, message))

    def malformed_answer(self, peer, rid, error):
        """``peer`` answered request ``rid`` with a malformed envelope: that request
        fails (once) with MALFORMED_ENVELOPE; a stray one is a dead letter."""
        pending = self.inflight.get(rid)
        if pending is None or pending.worker.via is not peer:
            self.stats["dead_letters"] += 1
            return
        self.inflight.pop(rid)
        pending.worker.handled += 1
        self.fail(pending, Status.MALFORMED_ENVELOPE,
                  f"{peer.label} answered {pending.service}.{pending.method} with a malformed "
                  f"envelope: {error}")

    def _slow_reader(self, pending, size):
        """The asker is over its outbound limit: it gets BUSY instead of the answer,
        and nobody else is held back."""
        self.stats["slow_reader_refused"] += 1
        self.fail(pending, Status.BUSY,
                  f"the answer ({size} bytes) was not sent: {pending.asker.label} reads too "
                  f"slowly ({pending.asker.outbound.backlog} bytes waiting for it)")

    def _gathered(self, pending, status, body=b"", error=None):
        gather = pending.gather
        if gather.add(pending.member, status, body, error) and gather.complete:
            self._finish(gather)

    def _finish(self, gather):
        """Send a complete gather's combined answer to its asker (one that left took
        the gather's requests out of the table with it, so it never completes)."""
        if gather.asker.outbound.over_limit:
            self.stats["slow_reader_refused"] += 1
            self.outbox.send(gather.asker, messages.failure(
                gather.asker_id, Status.BUSY, f"the combined answer was not sent: "
                f"{gather.asker.label} reads too slowly", sender=self.name))
            return
        route = gather.route
        self.outbox.stamp(route, gather.asker, self.clock.seconds())
        envelope, body = messages.response(gather.asker_id, route, sender=self.name), gather.body()
        if self.journal is not None:
            self.journal.record(envelope, body, gather.service, gather.method)
        self.outbox.send(gather.asker, envelope, body)

    # -- failures ------------------------------------------------------------

    def worker_lost(self, peer, why):
        """Fail (or retry once, when idempotent) every request ``peer`` was working on."""
        for pending in self.inflight.working_on(peer):
            if pending.retryable and not pending.retried and self._retry(pending):
                continue
            self.stats["actor_lost"] += 1
            self.fail(pending, Status.ACTOR_LOST,
                      f"actor {peer.label} was lost before answering ({why})")

    def _retry(self, pending):
        """Send an idempotent request whose actor was lost to another actor, once."""
        worker = self.router.retry(pending.service)
        if worker is None:
            return False
        envelope = pending.envelope
        rid = self.inflight.new_id()
        retry = attrs.evolve(pending, rid=rid, worker=worker, retried=True, bucket=0)
        self.inflight.add(retry)
        envelope["id"] = rid
        envelope["ttl"] = max(0.0, pending.deadline - self.clock.seconds())
        self.stats["retried"] += 1
        if worker.via is worker:
            self.outbox.send(worker, envelope, pending.body)
        else:
            self._send_remote(worker, envelope, pending.body)
        return True

    def expired(self, pending):
        """A request's deadline passed: its asker gets TIMEOUT, its worker a CANCEL."""
        self.stats["timeouts"] += 1
        self.longjobs.stop(pending)
        self.fail(pending, Status.TIMEOUT,
                  f"{pending.worker.label} did not answer {pending.service}.{pending.method} "
                  "before its deadline")

    def fail(self, pending, status, message):
        """Answer a request in flight with the dispatcher's own error."""
        self.metrics.answered(pending.service, pending.worker.name, status,
                              self.clock.seconds() - pending.started, pending.asker.user)
        if pending.gather is not None:
            self._gathered(pending, status, error=[status.label, message])
        else:
            self.outbox.send(pending.asker, messages.failure(pending.asker_id, status, message,
                                                             sender=self.name))

    def refuse(self, asker, asker_id, tell, origin, refusal):
        """Answer a request nobody can take, at once."""
        self.stats["unroutable"] += 1
        if refusal.counter is not None:
            self.stats[refusal.counter] += 1
        if origin is not None and origin.gather is not None:
            self.fail(origin, refusal.status, refusal.message)
        elif tell:
            self.outbox.send(asker, messages.tell_failed(refusal.status, refusal.message))
        else:
            self.outbox.send(asker, messages.failure(asker_id, refusal.status, refusal.message,
                                                     sender=self.name))

    def dead_letter(self, peer, envelope, why):
        self.stats["dead_letters"] += 1
        self.log.debug("dead letter from {peer}: {why} ({what}, route {route})",
                       peer=peer.label, why=why, what=described(envelope),
                       route=" > ".join(hop_names(envelope.get("r", []))) or "empty")

