"""Requests the dispatcher has sent to an actor and not yet seen answered.

Every entry leaves the table exactly once: answered, timed out, failed because
its actor was lost, or cancelled (by its asker, or because its asker left).
Deadlines are kept by :class:`~actornet.protocols.deadlines.Deadlines` (one
timer for all of them).
"""

import attrs
from twisted.internet.defer import Deferred, succeed

from actornet.protocols.deadlines import Deadlines


@attrs.define(eq=False, slots=True)
class Pending:
    """One request in flight: who asked (and under which id), who works on it.

    ``retryable`` requests (idempotent, sent to ``any``) keep their envelope and
    body so they can be sent to another actor once if theirs is lost.
    """

    rid: int
    asker: object
    asker_id: int
    worker: object
    deadline: float
    service: str
    method: str
    retryable: bool = False
    retried: bool = False
    envelope: dict | None = None
    body: object = None
    gather: object = None
    member: str | None = None
    started: float = 0.0
    bucket: int = 0
    route: tuple = ()


class InFlight:
    """The table of pending requests, indexed by id, worker, asker and deadline."""

    def __init__(self, clock, on_expired):
        self._on_expired = on_expired
        self._by_id = {}
        self._deadlines = Deadlines(clock, self._expire)
        self._next_id = 0
        self._empty_waiters = []

    def __len__(self):
        return len(self._by_id)

    def new_id(self):
        self._next_id += 1
        return self._next_id

    def add(self, pending):
        self._by_id[pending.rid] = pending
        pending.worker.working.add(pending.rid)
        pending.asker.asking.add(pending.rid)
        pending.worker.in_flight += 1
        pending.bucket = self._deadlines.add(pending.rid, pending.deadline)

    def get(self, rid):
        return self._by_id.get(rid)

    def pop(self, rid):
        """Remove and return the request ``rid``, or None if it already left."""
        pending = self._by_id.pop(rid, None)
        if pending is not None:
            pending.worker.working.discard(rid)
            pending.worker.in_flight -= 1
            self._deadlines.discard(rid, pending.bucket)
            pending.asker.asking.discard(rid)
            if not self._by_id and self._empty_waiters:
                waiters, self._empty_waiters = self._empty_waiters, []
                for waiter in waiters:
                    waiter.callback(None)
        return pending

    def when_empty(self):
        """A Deferred that fires once no request is in flight (at once if none is)."""
        if not self._by_id:
            return succeed(None)
        waiter = Deferred()
        self._empty_waiters.append(waiter)
        return waiter

    def take_all(self):
        """Remove and return every pending request."""
        return [self.pop(rid) for rid in list(self._by_id)]

    def working_on(self, worker):
        """Remove and return every request ``worker`` had."""
        return [self.pop(rid) for rid in list(worker.working)]

    def _expire(self, rids):
        expired = [self.pop(rid) for rid in rids if rid in self._by_id]
        for pending in expired:
            self._on_expired(pending)

    def stop(self):
        self._deadlines.stop()
