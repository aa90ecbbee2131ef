"""What the monitoring endpoints show: Prometheus metrics and the status document.

Both are computed from a :class:`Look`: a dispatcher
:class:`~actornet.dispatcher.snapshot.Snapshot` and how fresh it is.  The
:class:`DispatcherCollector` turns a look into metric families when a scraper
asks (``prometheus_client`` calls it at scrape time), so the dispatcher keeps
plain counters and pays nothing per message for Prometheus.  A registry from
:func:`metrics_registry` also holds ``prometheus_client``'s process collector
(resident memory, CPU seconds, open file descriptors) and platform collector
(the Python version).
"""

import attrs
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from actornet.dispatcher.metrics import BUCKETS


@attrs.frozen
class Look:
    """A snapshot as a monitoring endpoint got it.

    ``snapshot``: the dispatcher's latest snapshot, or None when there is none
    yet; ``stalled``: the reactor did not answer in time, so the snapshot is the
    last one it gave; ``stalled_seconds``: how long it has not answered (0 when
    it gave this snapshot just now); ``age_seconds``: how old the snapshot is.
    """

    snapshot: object
    stalled: bool = False
    stalled_seconds: float = 0.0
    age_seconds: float = 0.0


def status_document(look):
    """``/status``: ``{"status": "ok"}`` with the snapshot's summary and services;
    ``"stalled"`` (with ``reactor_stalled_seconds`` and the snapshot's age) when
    the reactor did not answer and the numbers are the last ones it gave."""
    document = {"status": "stalled" if look.stalled else "ok"}
    if look.snapshot is not None:
        document.update(look.snapshot.summary(), services=sorted(look.snapshot.services))
    document.update(reactor_stalled_seconds=round(look.stalled_seconds, 3),
                    snapshot_age_seconds=round(look.age_seconds, 3))
    return document


def metrics_registry(look):
    """A ``CollectorRegistry`` of its own (not the process-wide default, so two
    dispatchers in one process never clash) with a :class:`DispatcherCollector`
    over ``look`` and the process and platform collectors."""
    registry = CollectorRegistry()
    registry.register(DispatcherCollector(look))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class DispatcherCollector:
    """Reads a fresh :class:`Look` (``look()``) at every scrape and yields the
    dispatcher's metrics from it."""

    def __init__(self, look):
        self.look = look

    def describe(self):
        """Nothing to check ahead of time: the series depend on the traffic."""
        return []

    def collect(self):
        look = self.look()
        yield GaugeMetricFamily(
            "actornet_reactor_stalled_seconds",
            "How long the reactor has not answered the monitoring thread (0 when it did); "
            "the other metrics are then as old as actornet_snapshot_age_seconds.",
            value=look.stalled_seconds)
        yield GaugeMetricFamily("actornet_snapshot_age_seconds",
                                "How old the snapshot the metrics come from is.",
                                value=look.age_seconds)
        if look.snapshot is not None:
            yield from _families(look.snapshot)


def _families(snapshot):
    requests = CounterMetricFamily(
        "actornet_requests", "Requests answered, by service, actor and status.",
        labels=("service", "actor", "status"))
    for (service, actor, status), count in sorted(snapshot.requests.items(), key=str):
        requests.add_metric((service, actor, str(status)), count)
    yield requests
    latency = HistogramMetricFamily(
        "actornet_request_seconds", "Time from dispatch to answer, by service and actor.",
        labels=("service", "actor"))
    bounds = [repr(bound) for bound in BUCKETS] + ["+Inf"]
    for (service, actor), (counts, total, _) in sorted(snapshot.latency.items()):
        running, buckets = 0, []
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            buckets.append((bound, running))
        latency.add_metric((service, actor), buckets, total)
    yield latency
    yield _by_label("actornet_asker_requests", "Requests answered, by asker: the identity "
                    "that asked with [identities], else the actor or client.", "asker",
                    snapshot.askers)
    yield _by_label("actornet_errors", "Failed requests, by error: the status's name "
                    "(timeout, actor_lost, ...) or the exception a handler raised.",
                    "error", snapshot.errors)
    yield from _peers(snapshot)
    yield _by_label("actornet_dispatcher_events", "Dispatcher events (dead letters, "
                    "timeouts, refusals, ...).", "event", snapshot.counters)
    yield GaugeMetricFamily("actornet_connections", "Open connections.",
                            value=snapshot.connections)
    yield GaugeMetricFamily("actornet_in_flight", "Requests in flight.",
                            value=snapshot.in_flight)
    federation = snapshot.federation
    if federation is not None:
        yield GaugeMetricFamily("actornet_federation_connected",
                                "Whether the dispatcher reaches NATS.",
                                value=int(federation["connected"]))
        yield GaugeMetricFamily("actornet_federation_dispatchers",
                                "The other dispatchers it hears from.",
                                value=len(federation["dispatchers"]))


def _by_label(name, documentation, label, counts):
    family = CounterMetricFamily(name, documentation, labels=(label,))
    for value, count in sorted(counts.items()):
        family.add_metric((value,), count)
    return family


def _peers(snapshot):
    peers = sorted(snapshot.peers, key=lambda p: p.name)
    traffic = CounterMetricFamily(
        "actornet_actor_bytes", "Bytes the dispatcher read from and wrote to each connected "
        "actor.", labels=("actor", "direction"))
    working = GaugeMetricFamily("actornet_actor_in_flight", "Requests each actor is working on.",
                                labels=("actor",))
    for peer in peers:
        traffic.add_metric((peer.name, "in"), peer.bytes_in)
        traffic.add_metric((peer.name, "out"), peer.bytes_out)
        working.add_metric((peer.name,), peer.in_flight)
    yield traffic
    yield working
