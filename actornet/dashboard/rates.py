"""Requests and errors per second, from the dispatcher's request counters.

The dispatcher counts answered requests by (service, actor, status) and never
computes a rate (that would cost per message); a rate is the difference
between two readings of those counters over the time between them.  Readings
closer together than ``window`` seconds (a picture sent at once on a death,
or a page loaded between two ticks) reuse the last rates rather than divide a
few requests by a few milliseconds.
"""

WINDOW = 1.0
"""Seconds a reading must be apart from the previous one to give new rates."""


def totals(requests):
    """Sum the dispatcher's request counters (``{(service, actor, status): n}``,
    see :class:`~actornet.dispatcher.metrics.Metrics`) into
    ``{("actor", name) | ("service", name): (requests, errors)}``.

    An error is an answer whose status is 400 or above; a request an actor
    forwarded counts as a request of that actor, not an error.  A request no
    actor was given (``actor == ""``) counts for its service only.
    """
    sums = {}
    for (service, actor, status), count in requests.items():
        failed = count if isinstance(status, int) and status >= 400 else 0
        keys = [("service", service)] + ([("actor", actor)] if actor else [])
        for key in keys:
            done, errors = sums.get(key, (0, 0))
            sums[key] = (done + count, errors + failed)
    return sums


class Rates:
    """Turns successive counter readings into per-second rates."""

    def __init__(self, window=WINDOW):
        self.window = window
        self._base = None
        self._rates = {}

    def update(self, now, requests):
        """Read the counters ``requests`` at time ``now`` (seconds); returns
        ``{key: (requests_per_second, errors_per_second)}`` for the keys of
        :func:`totals`.  The first reading gives no rates (an empty dict); a
        counter that went down (its series was reset) counts as zero."""
        current = totals(requests)
        if self._base is None:
            self._base = (now, current)
            return self._rates
        then, previous = self._base
        elapsed = now - then
        if elapsed < self.window:
            return self._rates
        self._rates = {key: (_per_second(done, previous.get(key, (0, 0))[0], elapsed),
                             _per_second(errors, previous.get(key, (0, 0))[1], elapsed))
                       for key, (done, errors) in current.items()}
        self._base = (now, current)
        return self._rates


def _per_second(now_count, then_count, elapsed):
    return round(max(now_count - then_count, 0) / elapsed, 3)
