"""Request metrics, kept as plain counters.

The dispatcher updates these on every answer, so they are dictionaries of
numbers rather than ``prometheus_client`` objects (whose locks and label
lookups would cost more per message than the routing itself); a snapshot copies
them, and :mod:`~actornet.dispatcher.exposition` turns the copy into
Prometheus metrics at scrape time.

Every label value comes from a bounded set, so no asker can grow ``/metrics``
without end: a refused request is counted under its service's name only when
that service already has series of its own (an actor answered for it), and
under ``(unknown)`` otherwise (every UNKNOWN_SERVICE, any name an asker made
up); statuses outside :class:`~actornet.protocols.codes.Status` count as
FAILURE, as askers see them; and past ``max_pairs`` (service, actor) pairs,
new pairs are counted together under ``(other)``.  Askers and error names are
bounded the same way (``max_askers``, ``max_errors``): past the bound, new ones
are counted together under ``(other)``.
"""

from bisect import bisect_left

from actornet.protocols.codes import Status

MAX_PAIRS = 1000
MAX_ASKERS = 1000
MAX_ERRORS = 100
MAX_ERROR_NAME = 100
FAILURE = Status.FAILURE.label
UNKNOWN = "(unknown)"
OTHER = "(other)"
_SHARED = frozenset({(UNKNOWN, ""), (OTHER, OTHER)})
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)


class Latency:
    """A cumulative histogram of seconds."""

    __slots__ = ("counts", "total", "count")

    def __init__(self):
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds):
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


KNOWN_SERIES = 4096
"""The most (service, actor, status) triples :meth:`Metrics.answered` remembers."""


class Metrics:
    """Requests by service, actor and status; latency by service and actor;
    answers by asker; failures by error name.

    @param max_pairs: the most (service, actor) pairs with series of their own.
    @param max_askers: the most askers counted under their own names.
    @param max_errors: the most error names counted under their own names.
    """

    def __init__(self, max_pairs=MAX_PAIRS, max_askers=MAX_ASKERS, max_errors=MAX_ERRORS):
        self.requests = {}
        self.latency = {}
        self.askers = {}
        self.errors = {}
        self.max_pairs = max_pairs
        self.max_askers = max_askers
        self.max_errors = max_errors
        self._pairs = set()
        self._answered = set()
        self._known = {}

    def answered(self, service, actor, status, seconds, asker, error=None):
        """Count one request of ``service`` from ``asker``, finished by ``actor`` with
        ``status``.  A failure is also counted by name (see :meth:`_failed`);
        ``error`` is the answer's ``err`` field, when it has one.

        Every answer passes here, so a (service, actor, status) seen before goes
        straight to its counter and histogram (a bounded table of them): the
        status is parsed and the series found once, not per answer."""
        count = self.askers.get(asker)
        if count is None:
            self._asked(asker)
        else:
            self.askers[asker] = count + 1
        known = self._known.get((service, actor, status))
        if known is None:
            status = Status.parse(status)
            self._finished(service, actor, int(status), seconds)
            if status is not Status.SUCCESS:
                self._failed(error, status.label)
            return
        key, histogram, label = known
        self.requests[key] += 1
        histogram.observe(seconds)
        if label is not None:
            self._failed(error, label)

    def forwarded(self, service, actor, seconds):
        """Count one request of ``service`` that ``actor`` passed on to another
        service (its answer is counted there, under status ``forwarded`` here)."""
        self._finished(service, actor, "forwarded", seconds)

    def _finished(self, service, actor, status, seconds):
        pair = self._pair(service, actor)
        if pair[0] == service:
            self._answered.add(service)
        self._count(pair, status)
        histogram = self.latency.get(pair)
        if histogram is None:
            histogram = self.latency[pair] = Latency()
        histogram.observe(seconds)
        if status != "forwarded" and len(self._known) < KNOWN_SERIES:
            label = None if status == Status.SUCCESS else Status(status).label
            self._known[(service, actor, status)] = ((*pair, status), histogram, label)

    def refused(self, service, status, asker):
        """Count a request of ``asker`` no actor was given (unknown service, no
        workers, ...), under ``(unknown)`` unless an actor has answered for
        ``service`` before."""
        self._asked(asker)
        self._failed(None, Status(status).label)
        if status == Status.UNKNOWN_SERVICE or service not in self._answered:
            service = UNKNOWN
        self._count(self._pair(service, ""), int(status))

    def _asked(self, asker):
        """Count one request of ``asker``, or of ``(other)`` once ``max_askers`` are taken."""
        if asker not in self.askers and len(self.askers) >= self.max_askers:
            asker = OTHER
        self.askers[asker] = self.askers.get(asker, 0) + 1

    def _failed(self, error, label):
        """Count a failure under its status's ``label`` (``timeout``,
        ``actor_lost``, ...), or, when a handler raised (``failure``), under the
        exception's type name its answer's ``error`` carries (``[name, message]``)."""
        name = label
        if label == FAILURE and type(error) is list and error and type(error[0]) is str:
            name = error[0][:MAX_ERROR_NAME] or label
        count = self.errors.get(name)
        if count is None:
            if len(self.errors) >= self.max_errors:
                name = OTHER
            count = self.errors.get(name, 0)
        self.errors[name] = count + 1

    def _count(self, pair, status):
        key = (*pair, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def _pair(self, service, actor):
        """``(service, actor)``, or ``(other)`` for both once ``max_pairs`` are taken."""
        pair = (service, actor)
        if pair in self._pairs or pair in _SHARED:
            return pair
        if len(self._pairs) >= self.max_pairs:
            return (OTHER, OTHER)
        self._pairs.add(pair)
        return pair

    def copy(self):
        """The counters as plain values, for a snapshot: ``requests``, ``latency``
        (``{(service, actor): (bucket counts, total, count)}``), ``askers`` and
        ``errors``."""
        return {"requests": dict(self.requests),
                "latency": {key: (tuple(h.counts), h.total, h.count)
                            for key, h in self.latency.items()},
                "askers": dict(self.askers), "errors": dict(self.errors)}
