"""The asks a session waits on: one Deferred each, its deadline, its progress callback.

Every ask leaves the table exactly once: answered, timed out, cancelled by its
asker (which tells the dispatcher, so the handler stops), or failed because the
link went.  Deadlines are kept on one timer
(:class:`~actornet.protocols.deadlines.Deadlines`), started on the owner's clock
when first needed.
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from actornet.actors.requests import bag_of
from actornet.protocols import messages
from actornet.protocols.deadlines import Deadlines
from actornet.protocols.errors import ActornetError, Cancelled, RequestTimeout


class _Ask:
    """One ask waiting for its answer."""

    __slots__ = ("answer", "bucket", "service", "method", "timeout", "on_progress")

    def __init__(self, answer, bucket, service, method, timeout, on_progress):
        self.answer = answer
        self.bucket = bucket
        self.service = service
        self.method = method
        self.timeout = timeout
        self.on_progress = on_progress


class Asks:
    """The table of ``owner``'s asks; ``send(envelope)`` reaches the dispatcher (or
    returns False when there is no link)."""

    log = Logger()

    def __init__(self, owner, send):
        self._owner = owner
        self._send = send
        self._waiting = {}
        self._deadlines = None

    def __len__(self):
        return len(self._waiting)

    def add(self, rid, service, method, timeout, on_progress=None):
        """Wait for the answer to ask ``rid``; return the Deferred it will fire."""
        answer = Deferred(lambda d: self._cancel(rid))
        clock = self._owner.clock
        if self._deadlines is None:
            self._deadlines = Deadlines(clock, self._timed_out)
        bucket = self._deadlines.add(rid, clock.seconds() + timeout)
        self._waiting[rid] = _Ask(answer, bucket, service, method, timeout, on_progress)
        return answer

    def take(self, rid):
        """The Deferred of ask ``rid``, which leaves the table; None if it is not there
        (answered, timed out or cancelled already)."""
        ask = self._waiting.pop(rid, None)
        if ask is None:
            return None
        self._deadlines.discard(rid, ask.bucket)
        return ask.answer

    def progress(self, envelope, body):
        """A progress report on ask ``envelope["id"]``: to its callback, if it has one;
        a report for no ask waiting (or a malformed one) is dropped."""
        ask = self._waiting.get(envelope["id"])
        if ask is None or ask.on_progress is None:
            return
        try:
            bag = bag_of(body, envelope.get("r", []), envelope.get("src"))
        except ActornetError as e:
            self.log.warn("{actor}: dropped a progress report: {error}",
                          actor=self._owner.name, error=e)
            return
        try:
            ask.on_progress(bag)
        except Exception:
            self.log.failure("{actor}: a progress callback failed", actor=self._owner.name)

    def fail_all(self, error):
        """Fail every ask with an ``error()`` of its own (the link went), at once."""
        waiting, self._waiting = self._waiting, {}
        if self._deadlines is not None:
            self._deadlines.stop()
            self._deadlines = None
        for ask in waiting.values():
            ask.answer.errback(error())

    def _timed_out(self, rids):
        for rid in rids:
            ask = self._waiting.pop(rid, None)
            if ask is not None:
                ask.answer.errback(RequestTimeout(
                    f"no answer to {ask.service}.{ask.method} within {ask.timeout}s"))

    def _cancel(self, rid):
        """The asker cancelled ask ``rid``: tell the dispatcher, fail it with Cancelled."""
        ask = self._waiting.pop(rid, None)
        if ask is not None:
            self._deadlines.discard(rid, ask.bucket)
            self._send(messages.cancel(rid))
            ask.answer.errback(Cancelled(
                f"{ask.service}.{ask.method} was cancelled by its asker"))
