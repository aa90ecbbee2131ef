"""Metrics keep a bounded number of series, whatever names askers make up, and
come out through ``prometheus_client``."""

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_dispatcher import Star

from actornet.dispatcher.exposition import Look, metrics_registry
from actornet.dispatcher.identity import Identity
from actornet.dispatcher.metrics import Metrics
from actornet.protocols.codes import Kind, Status


def samples(text):
    """``{(sample name, frozenset of label pairs): value}`` of a Prometheus text page."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(text, name, **labels):
    """The value of one Prometheus sample in ``text``."""
    wanted = (name, frozenset((key, str(value)) for key, value in labels.items()))
    found = samples(text)
    if wanted not in found:
        raise AssertionError(f"no sample {name}{labels}")
    return found[wanted]


def exposition(snapshot, **look):
    """``/metrics`` of ``snapshot`` as ``prometheus_client`` writes it."""
    return generate_latest(metrics_registry(lambda: Look(snapshot, **look))).decode()


def test_refusals_for_made_up_services_share_one_series():
    """A thousand UNKNOWN_SERVICE refusals for different names are one counter."""
    metrics = Metrics()
    for number in range(1000):
        metrics.refused(f"made-up-{number}", Status.UNKNOWN_SERVICE, "cli")
    assert metrics.requests == {("(unknown)", "", 404): 1000}
    assert metrics.latency == {}
    assert metrics.errors == {"unknown_service": 1000}


def test_a_refusal_has_its_services_name_only_once_an_actor_answered_for_it():
    """NO_WORKERS for a service nobody answered is ``(unknown)``; once one was
    answered, its refusals are counted under its name."""
    metrics = Metrics()
    metrics.refused("echo", Status.NO_WORKERS, "cli")
    metrics.answered("echo", "echo-1", Status.SUCCESS, 0.001, "cli")
    metrics.refused("echo", Status.NO_WORKERS, "cli")
    metrics.refused("echo", Status.BUSY, "cli")
    assert metrics.requests == {("(unknown)", "", 503): 1, ("echo", "echo-1", 200): 1,
                                ("echo", "", 503): 1, ("echo", "", 429): 1}


def test_statuses_outside_the_protocol_are_counted_as_failures():
    """An actor answering with made-up status numbers adds no series: they count as 500."""
    metrics = Metrics()
    for status in (299, 12345, 2**70, Status.FAILURE):
        metrics.answered("echo", "echo-1", status, 0.001, "cli")
    assert metrics.requests == {("echo", "echo-1", 500): 4}
    assert metrics.errors == {"failure": 4}


def test_pairs_past_the_limit_are_counted_together_as_other():
    """With room for 3 (service, actor) pairs, 50 actors make 3 pairs and ``(other)``,
    and no request or second of latency is lost."""
    metrics = Metrics(max_pairs=3)
    for number in range(50):
        metrics.answered("svc", f"actor-{number}", Status.SUCCESS, 0.5, "cli")
        metrics.forwarded("svc", f"actor-{number}", 0.5)
    assert set(metrics.latency) == {("svc", "actor-0"), ("svc", "actor-1"), ("svc", "actor-2"),
                                    ("(other)", "(other)")}
    assert metrics.requests[("(other)", "(other)", 200)] == 47
    assert metrics.requests[("(other)", "(other)", "forwarded")] == 47
    assert sum(metrics.requests.values()) == 100
    assert sum(h.total for h in metrics.latency.values()) == 50.0


def test_askers_past_the_limit_are_counted_together_as_other():
    """With room for 2 askers, 10 askers are 2 names and ``(other)``, and every
    answer and refusal is counted once."""
    metrics = Metrics(max_askers=2)
    for number in range(10):
        metrics.answered("echo", "echo-1", Status.SUCCESS, 0.001, f"client-{number}")
        metrics.refused("nosuch", Status.UNKNOWN_SERVICE, f"client-{number}")
    assert metrics.askers == {"client-0": 2, "client-1": 2, "(other)": 16}


def test_a_handlers_exception_is_counted_by_its_type_and_other_failures_by_status():
    """A FAILURE answer counts under the type its ``err`` names (ValueError); a
    timeout, a lost actor and an unknown method under their statuses' names, even
    when the actor's answer names a type of its own."""
    metrics = Metrics()
    for _ in range(2):
        metrics.answered("echo", "echo-1", Status.FAILURE, 0.1, "cli", ["ValueError", "bad"])
    metrics.answered("echo", "echo-1", Status.FAILURE, 0.1, "cli", ["KeyError", "x"])
    metrics.answered("echo", "echo-1", Status.UNKNOWN_METHOD, 0.1, "cli",
                     ["UnknownMethod", "no"])
    metrics.answered("echo", "echo-1", Status.TIMEOUT, 30.0, "cli")
    metrics.answered("echo", "echo-1", Status.ACTOR_LOST, 1.0, "cli")
    metrics.answered("echo", "echo-1", Status.SUCCESS, 0.1, "cli")
    assert metrics.errors == {"ValueError": 2, "KeyError": 1, "unknown_method": 1,
                              "timeout": 1, "actor_lost": 1}


def test_error_names_from_actors_are_bounded_and_malformed_ones_count_as_failure():
    """Made-up type names past ``max_errors`` share ``(other)``; an ``err`` that is
    not ``[text, ...]`` counts as ``failure``; a long name is cut."""
    metrics = Metrics(max_errors=3)
    for number in range(20):
        metrics.answered("echo", "echo-1", Status.FAILURE, 0.1, "cli", [f"Made{number}", ""])
    for hostile in (5, [], [7, "x"], {"a": 1}, [""]):
        metrics.answered("echo", "echo-1", Status.FAILURE, 0.1, "cli", hostile)
    assert metrics.errors == {"Made0": 1, "Made1": 1, "Made2": 1, "(other)": 22}
    wide = Metrics()
    wide.answered("echo", "echo-1", Status.FAILURE, 0.1, "cli", ["E" * 10_000, ""])
    assert list(wide.errors) == ["E" * 100]


def test_with_identities_askers_are_counted_by_identity_not_by_client():
    """Two one-shot clients of identity alice are one asker, ``alice``: the user,
    as a network with identities knows it, not one series per connection."""
    alice = Identity("alice", register=("*",), serve=("echo",), ask=("echo",),
                     token="a-token")
    star = Star(identities=(alice,))
    worker = star.connect()
    worker.register("echo-1", ["echo"], tok="a-token")
    for rid, name in enumerate(("client-1-a", "client-2-b"), 1):
        client = star.connect()
        client.register(name, tok="a-token")
        client.ask(rid, "echo")
        worker.answer(worker.envelopes()[-1])
    assert star.dispatcher.snapshot().askers == {"alice": 2}


def test_with_identities_refused_requests_are_counted_by_identity_too():
    """A request no actor was given counts under the identity, as an answered one
    does: one-shot clients asking for a made-up service make no series each."""
    alice = Identity("alice", register=("*",), ask=("*",), token="a-token")
    star = Star(identities=(alice,))
    for name in ("client-1-a", "client-2-b"):
        client = star.connect()
        client.register(name, tok="a-token")
        client.ask(1, "nosuch")
    assert star.dispatcher.snapshot().askers == {"alice": 2}


def test_the_dispatcher_counts_askers_and_errors_as_answers_pass():
    """Through a dispatcher: an actor's ValueError, a timeout and an unknown
    service are counted by name, and every answer under the client that asked."""
    star = Star(request_timeout=5.0)
    worker, asker = star.actor("echo-1", ["echo"]), star.actor("asker")
    for rid in (1, 2, 3):
        asker.ask(rid, "echo")
    first, second, _ = worker.envelopes()
    worker.answer(first)
    worker.answer(second, Status.FAILURE, err=["ValueError", "no"])
    star.clock.advance(6)
    asker.ask(4, "nosuch")
    snapshot = star.dispatcher.snapshot()
    assert snapshot.askers == {"asker": 4}
    assert snapshot.errors == {"ValueError": 1, "timeout": 1, "unknown_service": 1}
    text = exposition(snapshot)
    assert sample(text, "actornet_asker_requests_total", asker="asker") == 4
    assert sample(text, "actornet_errors_total", error="ValueError") == 1
    assert sample(text, "actornet_errors_total", error="timeout") == 1
    assert sample(text, "actornet_requests_total", service="echo", actor="echo-1",
                  status=504) == 1
    assert sample(text, "actornet_request_seconds_count", service="echo", actor="echo-1") == 3
    assert sample(text, "actornet_request_seconds_bucket", service="echo", actor="echo-1",
                  le="+Inf") == 3
    assert sample(text, "actornet_actor_in_flight", actor="echo-1") == 0
    assert sample(text, "actornet_in_flight") == 0


def test_the_page_has_process_metrics_and_the_stall_gauge():
    """Resident memory, CPU seconds and open fds come from the process collector;
    the stall and the snapshot's age are gauges."""
    text = exposition(Star().dispatcher.snapshot(), stalled_seconds=2.5, age_seconds=2.6)
    assert sample(text, "process_resident_memory_bytes") > 0
    assert sample(text, "process_cpu_seconds_total") > 0
    assert sample(text, "process_open_fds") > 0
    assert sample(text, "actornet_reactor_stalled_seconds") == 2.5
    assert sample(text, "actornet_snapshot_age_seconds") == 2.6


def test_asks_for_thousands_of_made_up_services_add_three_samples_to_the_metrics_page():
    """10,000 asks for made-up names, each refused UNKNOWN_SERVICE, add three samples
    to /metrics: the ``(unknown)`` service's 10,000, the dispatcher's unroutable
    count and the unknown_service error count."""
    star = Star()
    worker, asker = star.actor("echo-1", ["echo"]), star.actor("asker")
    asker.ask(1, "echo")
    request, _ = worker.only(Kind.REQUEST)
    worker.answer(request)
    before = samples(exposition(star.dispatcher.snapshot()))
    for number in range(10_000):
        asker.ask(number + 2, f"made-up-{number}")
    refusals = asker.envelopes()
    assert len(refusals) == 10_001
    assert {e["st"] for e in refusals[1:]} == {Status.UNKNOWN_SERVICE}
    text = exposition(star.dispatcher.snapshot())
    assert "made-up" not in text
    after = samples(text)
    assert {key: value for key, value in after.items() if key not in before} == {
        ("actornet_requests_total",
         frozenset({"service": "(unknown)", "actor": "", "status": "404"}.items())): 10_000,
        ("actornet_dispatcher_events_total", frozenset({"event": "unroutable"}.items())): 10_000,
        ("actornet_errors_total", frozenset({"error": "unknown_service"}.items())): 10_000}
    assert sample(text, "actornet_asker_requests_total", asker="asker") == 10_001
