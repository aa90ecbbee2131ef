"""A steady, bounded load of asks, and an exact account of what became of each.

    report = await steady_load(asker, "work", "do", total=2000, rate=1000, clock=clock)
    assert report.ok + report.failed == report.sent and not report.lost

Every ask's Deferred is followed to its single outcome, so the report can
prove the guarantees: nothing lost, nothing answered twice, every answer the
answer to its own request.
"""

from collections import Counter

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from actornet.protocols.errors import ActornetError


@attrs.define
class LoadReport:
    """What happened to the asks of one load run."""

    sent: int = 0
    ok: int = 0
    errors: Counter = attrs.Factory(Counter)
    answers: Counter = attrs.Factory(Counter)
    mismatched: int = 0

    @property
    def failed(self):
        return sum(self.errors.values())

    @property
    def duplicates(self):
        """Asks that got more than one outcome (must be 0)."""
        return sum(n - 1 for n in self.answers.values() if n > 1)

    @property
    def lost(self):
        """Asks sent that never resolved (must be 0)."""
        return self.sent - len(self.answers)

    def summary(self):
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (f"sent={self.sent} ok={self.ok} errors={self.failed} ({errors}) "
                f"duplicates={self.duplicates} lost={self.lost} mismatched={self.mismatched}")


async def steady_load(asker, service, method, *, total, rate, clock, concurrency=50,
                      timeout=5.0, idempotent=False, progress=None):
    """Send ``total`` asks at ``rate`` per second, at most ``concurrency`` at once.

    Each request is ``{"n": n}``; an answer must carry the same ``n``.
    @param progress: called with the report after every outcome (to inject a
        fault at some point of the run).
    @return: the :class:`LoadReport`, once every ask has resolved.
    """
    report = LoadReport()
    finished = Deferred()
    state = {"next": 0, "in_flight": 0}

    def outcome(n):
        report.answers[n] += 1
        state["in_flight"] -= 1
        if progress is not None:
            progress(report)
        if state["next"] == total and state["in_flight"] == 0 and not finished.called:
            if ticker.running:
                ticker.stop()
            finished.callback(report)

    def answered(answer, n):
        report.ok += 1
        if answer.get("n") != n:
            report.mismatched += 1
        outcome(n)

    def failed(failure, n):
        error = failure.value
        report.errors[error.status.label if isinstance(error, ActornetError)
                      else type(error).__name__] += 1
        outcome(n)

    def tick():
        if state["next"] >= total or state["in_flight"] >= concurrency:
            return
        n = state["next"]
        state["next"] += 1
        state["in_flight"] += 1
        report.sent += 1
        asked = asker.ask(service, method, {"n": n}, timeout=timeout, idempotent=idempotent)
        asked.addCallbacks(answered, failed, callbackArgs=(n,), errbackArgs=(n,))

    ticker = LoopingCall(tick)
    ticker.clock = clock
    ticker.start(1.0 / rate)
    return await finished
