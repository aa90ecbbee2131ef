"""Request metrics, kept as plain counters and rendered in Prometheus text format.

The dispatcher updates these on every answer, so they are dictionaries of
numbers rather than ``prometheus_client`` objects (whose locks and label
lookups would cost more per message than the routing itself); the exposition
format is simple enough to write out here.

Every label value comes from a bounded set, so no asker can grow ``/metrics``
without end: a refused request is counted under its service's name only when
that service already has series of its own (an actor answered for it), and
under ``(unknown)`` otherwise (every UNKNOWN_SERVICE, any name an asker made
up); statuses outside :class:`~actornet.protocols.codes.Status` count as
FAILURE, as askers see them; and past ``max_pairs`` (service, actor) pairs,
new pairs are counted together under ``(other)``.
"""

from bisect import bisect_left

from actornet.protocols.codes import Status

MAX_PAIRS = 1000
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
    """Requests by service, actor and status; latency by service and actor.

    @param max_pairs: the most (service, actor) pairs with series of their own.
    """

    def __init__(self, max_pairs=MAX_PAIRS):
        self.requests = {}
        self.latency = {}
        self.max_pairs = max_pairs
        self._pairs = set()
        self._answered = set()
        self._known = {}

    def answered(self, service, actor, status, seconds):
        """Count one request of ``service`` finished by ``actor`` with ``status``.

        Every answer passes here, so a (service, actor, status) seen before goes
        straight to its counter and histogram (a bounded table of them): the
        status is parsed and the series found once, not per answer."""
        known = self._known.get((service, actor, status))
        if known is None:
            self._finished(service, actor, int(Status.parse(status)), seconds)
            return
        key, histogram = known
        self.requests[key] += 1
        histogram.observe(seconds)

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
            self._known[(service, actor, status)] = ((*pair, status), histogram)

    def refused(self, service, status):
        """Count a request no actor was given (unknown service, no workers, ...),
        under ``(unknown)`` unless an actor has answered for ``service`` before."""
        if status == Status.UNKNOWN_SERVICE or service not in self._answered:
            service = UNKNOWN
        self._count(self._pair(service, ""), int(status))

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
        """``(requests, latency)`` as plain values, for a snapshot."""
        return dict(self.requests), {key: (tuple(h.counts), h.total, h.count)
                                     for key, h in self.latency.items()}


def _labels(**labels):
    inner = ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(snapshot):
    """A dispatcher :class:`~actornet.dispatcher.snapshot.Snapshot` in Prometheus
    text exposition format 0.0.4."""
    out = [
        "# HELP actornet_requests_total Requests answered, by service, actor and status.",
        "# TYPE actornet_requests_total counter",
    ]
    for (service, actor, status), count in sorted(snapshot.requests.items(), key=str):
        out.append(f"actornet_requests_total{_labels(service=service, actor=actor, status=status)}"
                   f" {count}")
    out += ["# HELP actornet_request_seconds Time from dispatch to answer, by service and "
            "actor.",
            "# TYPE actornet_request_seconds histogram"]
    for (service, actor), (counts, total, observed) in sorted(snapshot.latency.items()):
        running = 0
        for bound, count in zip(BUCKETS + (float("inf"),), counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            labels = _labels(service=service, actor=actor, le=le)
            out.append(f"actornet_request_seconds_bucket{labels} {running}")
        labels = _labels(service=service, actor=actor)
        out.append(f"actornet_request_seconds_sum{labels} {total}")
        out.append(f"actornet_request_seconds_count{labels} {observed}")
    peers = sorted(snapshot.peers, key=lambda p: p.name)
    out += ["# HELP actornet_actor_bytes_total Bytes the dispatcher read from and wrote to "
            "each connected actor.",
            "# TYPE actornet_actor_bytes_total counter"]
    for peer in peers:
        out.append(f"actornet_actor_bytes_total{_labels(actor=peer.name, direction='in')} "
                   f"{peer.bytes_in}")
        out.append(f"actornet_actor_bytes_total{_labels(actor=peer.name, direction='out')} "
                   f"{peer.bytes_out}")
    out += ["# HELP actornet_actor_in_flight Requests each actor is working on.",
            "# TYPE actornet_actor_in_flight gauge"]
    for peer in peers:
        out.append(f"actornet_actor_in_flight{_labels(actor=peer.name)} {peer.in_flight}")
    out += ["# HELP actornet_dispatcher_events_total Dispatcher events (dead letters, "
            "timeouts, refusals, ...).",
            "# TYPE actornet_dispatcher_events_total counter"]
    for event, count in sorted(snapshot.counters.items()):
        out.append(f"actornet_dispatcher_events_total{_labels(event=event)} {count}")
    out += ["# HELP actornet_connections Open connections.", "# TYPE actornet_connections gauge",
            f"actornet_connections {snapshot.connections}",
            "# HELP actornet_in_flight Requests in flight.", "# TYPE actornet_in_flight gauge",
            f"actornet_in_flight {snapshot.in_flight}"]
    federation = snapshot.federation
    if federation is not None:
        out += ["# HELP actornet_federation_connected Whether the dispatcher reaches NATS.",
                "# TYPE actornet_federation_connected gauge",
                f"actornet_federation_connected {int(federation['connected'])}",
                "# HELP actornet_federation_dispatchers The other dispatchers it hears from.",
                "# TYPE actornet_federation_dispatchers gauge",
                f"actornet_federation_dispatchers {len(federation['dispatchers'])}"]
    return "\n".join(out) + "\n"
