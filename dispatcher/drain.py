"""Draining: a stopping dispatcher lets the requests in flight finish first.

New requests are refused SHUTTING_DOWN from the start of the drain (forwards of
requests already in flight still go through); after ``timeout`` seconds, what
is still in flight is failed with SHUTTING_DOWN, and cancelled at its worker.
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from actornet.protocols.codes import Status


def drain(clock, requests, inflight, timeout):
    """Start draining ``requests``.

    @return: a Deferred firing with the number of requests that had to be
        failed (0 when everything finished in time).
    """
    requests.draining = True
    drained = Deferred()
    if not len(inflight):
        drained.callback(0)
        return drained
    Logger().info("draining {count} requests in flight (up to {timeout}s)",
                  count=len(inflight), timeout=timeout)

    def finished(_):
        # The last request leaves the table before its answer is sent, in the
        # same call (and the answer may wait in its connection's cork until the
        # read is handled), so the drain ends on the next turn, once the answer
        # is written: whoever waits for the drain closes connections next.
        if deadline.active():
            deadline.cancel()
            clock.callLater(0, drained.callback, 0)

    def expired():
        left = inflight.take_all()
        for pending in left:
            requests.longjobs.stop(pending)
            requests.fail(pending, Status.SHUTTING_DOWN,
                          f"the dispatcher shut down before {pending.worker.label} answered")
        drained.callback(len(left))

    deadline = clock.callLater(timeout, expired)
    inflight.when_empty().addCallback(finished)
    return drained
