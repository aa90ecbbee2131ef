"""The router's rules with plain values: no sockets, no clock, no dispatcher."""

import math

import attrs
import pytest

from actornet.dispatcher.admission import Refusal
from actornet.dispatcher.registry import Registry
from actornet.dispatcher.router import Choice, Router
from actornet.dispatcher.settings import DispatcherSettings
from actornet.protocols.codes import Status


@attrs.define
class Gate:
    over_limit: bool = False


@attrs.define(eq=False)
class Worker:
    name: str
    services: tuple = ("svc",)
    in_flight: int = 0
    outbound: Gate = attrs.Factory(Gate)


def router_with(*workers, **settings):
    registry = Registry()
    for worker in workers:
        registry.add(worker)
    return Router(registry, DispatcherSettings(**settings)), registry


def test_a_request_at_the_hop_limit_is_refused_and_counted():
    router, _ = router_with(hop_limit=4)
    assert router.check(3, 1.0) == 1.0
    assert router.check(4, 1.0) == Refusal(
        Status.HOP_LIMIT_EXCEEDED, "the bag made 4 hops (limit 4)", "hop_limit")


def test_deadlines_default_and_are_bounded():
    """No ttl means the configured default; a ttl is clamped to [0, max_timeout]."""
    router, _ = router_with(request_timeout=7.0, max_timeout=60.0)
    assert router.check(0, None) == 7.0
    assert router.check(0, -5) == 0.0
    assert router.check(0, 1e9) == 60.0


@pytest.mark.parametrize("ttl", [math.inf, math.nan, "soon"])
def test_a_ttl_that_is_not_a_finite_number_is_refused(ttl):
    router, _ = router_with()
    assert router.check(0, ttl).status == Status.MALFORMED_ENVELOPE


def test_a_draining_dispatcher_refuses_new_requests():
    router, _ = router_with()
    refusal = router.check(0, 1.0, draining=True)
    assert (refusal.status, refusal.counter) == (Status.SHUTTING_DOWN, "refused_draining")


def test_any_picks_the_least_busy_and_is_retryable_only_when_idempotent():
    busy, idle = Worker("busy", in_flight=3), Worker("idle", in_flight=1)
    router, _ = router_with(busy, idle)
    assert router.choose("svc", "any") == Choice((idle,))
    assert router.choose("svc", "any", idempotent=True) == Choice((idle,), retryable=True)


def test_any_skips_slow_readers_and_refuses_busy_when_all_are_slow():
    slow, fine = Worker("slow", outbound=Gate(True)), Worker("fine", in_flight=5)
    router, _ = router_with(slow, fine)
    assert router.choose("svc", "any").workers == (fine,)
    fine.outbound.over_limit = True
    assert router.choose("svc", "any").status == Status.BUSY


def test_all_gathers_every_worker_and_sets_slow_readers_apart():
    one, two, slow = Worker("one"), Worker("two"), Worker("slow", outbound=Gate(True))
    router, _ = router_with(one, two, slow, Worker("other", ("other",)))
    assert router.choose("svc", "all") == Choice((one, two), (slow,), gathered=True)


def test_names_reach_exactly_those_actors_and_a_list_is_gathered():
    one, two = Worker("one"), Worker("two")
    router, _ = router_with(one, two, Worker("three"))
    assert router.choose("svc", "two") == Choice((two,))
    assert router.choose("svc", ["two", "one"]) == Choice((two, one), gathered=True)


@pytest.mark.parametrize("target, status", [
    (["one", "ghost"], Status.NO_WORKERS),
    ([], Status.MALFORMED_ENVELOPE),
    (["one", 5], Status.MALFORMED_ENVELOPE),
])
def test_a_bad_list_of_names_is_refused(target, status):
    router, _ = router_with(Worker("one"))
    assert router.choose("svc", target).status == status


def test_a_named_slow_reader_is_refused_busy():
    router, _ = router_with(Worker("slow", outbound=Gate(True)))
    assert router.choose("svc", "slow").status == Status.BUSY


def test_unknown_and_empty_services_are_told_apart():
    """A service nobody ever served is UNKNOWN_SERVICE; one whose actors left is NO_WORKERS."""
    gone = Worker("gone")
    router, registry = router_with(gone)
    assert router.choose("nosuch", "any").status == Status.UNKNOWN_SERVICE
    registry.remove(gone)
    assert router.choose("svc", "any").status == Status.NO_WORKERS
    assert router.retry("svc") is None
