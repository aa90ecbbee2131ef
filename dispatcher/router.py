"""Routing decisions: where a request goes, or why it goes nowhere.

The router does no I/O and keeps no time: given a request's facts (hops so
far, the deadline it asks for, its service and target) and the registry, it
answers with a :class:`Choice` or a :class:`~actornet.dispatcher.admission.Refusal`.
The dispatcher carries the decision out.  So every rule (target selection,
gathering, retry, the hop limit, deadline bounds, draining) can be tested with
plain values.
"""

import math

import attrs

from actornet.dispatcher.admission import Refusal
from actornet.dispatcher.registry import RoutingError
from actornet.protocols.codes import Status


@attrs.frozen
class Choice:
    """The actors a request goes to.

    ``busy``: actors of an ``all`` request that are over their outbound limit
    (answered BUSY in the gathered answer, not sent to).  ``gathered``: the
    answers are combined into one keyed by actor name.  ``retryable``: the
    request may go to another actor once if its actor is lost.
    """

    workers: tuple
    busy: tuple = ()
    gathered: bool = False
    retryable: bool = False


def seconds(value):
    """``value`` as a finite float, or None when it is not one."""
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Router:
    """Decides for the dispatcher; reads the registry and the settings only."""

    def __init__(self, registry, settings):
        self.registry = registry
        self.settings = settings

    def check(self, hops, ttl, *, draining=False):
        """The bounded deadline (seconds) of a request with ``hops`` stamps asking
        for ``ttl`` seconds (None: the default), or a Refusal.

        ``draining``: the dispatcher takes no new requests (forwards of
        requests in flight and management requests are not new).
        """
        if draining:
            return Refusal(Status.SHUTTING_DOWN,
                           "the dispatcher is shutting down and takes no new requests",
                           "refused_draining")
        if hops >= self.settings.hop_limit:
            return Refusal(Status.HOP_LIMIT_EXCEEDED,
                           f"the bag made {hops} hops (limit {self.settings.hop_limit})",
                           "hop_limit")
        ttl = seconds(self.settings.request_timeout if ttl is None else ttl)
        if ttl is None:
            return Refusal(Status.MALFORMED_ENVELOPE, "ttl must be a finite number of seconds")
        return min(max(ttl, 0.0), self.settings.max_timeout)

    def choose(self, service, target, *, idempotent=False):
        """The :class:`Choice` of actors for a request, or a Refusal."""
        try:
            if target == "any":
                return Choice((self.registry.least_busy(service),), retryable=idempotent)
            if target == "all":
                workers = self.registry.workers(service)
                return Choice(tuple(w for w in workers if not w.outbound.over_limit),
                              tuple(w for w in workers if w.outbound.over_limit),
                              gathered=True)
            if isinstance(target, str):
                names = [target]
            elif len(target) > self.settings.max_targets:
                return Refusal(Status.MALFORMED_ENVELOPE,
                               f"a target list names at most {self.settings.max_targets} "
                               f"actors, not {len(target)}")
            elif all(type(name) is str for name in target):
                names = list(dict.fromkeys(target))
            else:
                names = []
            if not names:
                return Refusal(Status.MALFORMED_ENVELOPE,
                               "a target is 'any', 'all', a name or a list of names")
            workers = self.registry.named(service, names)
        except RoutingError as e:
            return Refusal(e.status, e.message)
        for worker in workers:
            if worker.outbound.over_limit:
                return Refusal(Status.BUSY, f"actor {worker.name} is over its outbound limit")
        return Choice(tuple(workers), gathered=not isinstance(target, str))

    def retry(self, service):
        """Another actor for an idempotent request whose actor was lost, or None."""
        try:
            return self.registry.least_busy(service)
        except RoutingError:
            return None


def busy_message(workers):
    """What an ``all`` answer says of actors skipped for being slow readers."""
    names = ", ".join(w.name for w in workers)
    return f"{names} over the outbound limit (a slow reader); not sent"
