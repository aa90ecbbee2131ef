"""Metrics keep a bounded number of series, whatever names askers make up."""

from test_dispatcher import Star
from test_management import sample

from actornet.dispatcher.metrics import Metrics, render
from actornet.protocols.codes import Kind, Status


def test_refusals_for_made_up_services_share_one_series():
    """A thousand UNKNOWN_SERVICE refusals for different names are one counter."""
    metrics = Metrics()
    for number in range(1000):
        metrics.refused(f"made-up-{number}", Status.UNKNOWN_SERVICE)
    assert metrics.requests == {("(unknown)", "", 404): 1000}
    assert metrics.latency == {}


def test_a_refusal_has_its_services_name_only_once_an_actor_answered_for_it():
    """NO_WORKERS for a service nobody answered is ``(unknown)``; once one was
    answered, its refusals are counted under its name."""
    metrics = Metrics()
    metrics.refused("echo", Status.NO_WORKERS)
    metrics.answered("echo", "echo-1", Status.SUCCESS, 0.001)
    metrics.refused("echo", Status.NO_WORKERS)
    metrics.refused("echo", Status.BUSY)
    assert metrics.requests == {("(unknown)", "", 503): 1, ("echo", "echo-1", 200): 1,
                                ("echo", "", 503): 1, ("echo", "", 429): 1}


def test_statuses_outside_the_protocol_are_counted_as_failures():
    """An actor answering with made-up status numbers adds no series: they count as 500."""
    metrics = Metrics()
    for status in (299, 12345, 2**70, Status.FAILURE):
        metrics.answered("echo", "echo-1", status, 0.001)
    assert metrics.requests == {("echo", "echo-1", 500): 4}


def test_pairs_past_the_limit_are_counted_together_as_other():
    """With room for 3 (service, actor) pairs, 50 actors make 3 pairs and ``(other)``,
    and no request or second of latency is lost."""
    metrics = Metrics(max_pairs=3)
    for number in range(50):
        metrics.answered("svc", f"actor-{number}", Status.SUCCESS, 0.5)
        metrics.forwarded("svc", f"actor-{number}", 0.5)
    assert set(metrics.latency) == {("svc", "actor-0"), ("svc", "actor-1"), ("svc", "actor-2"),
                                    ("(other)", "(other)")}
    assert metrics.requests[("(other)", "(other)", 200)] == 47
    assert metrics.requests[("(other)", "(other)", "forwarded")] == 47
    assert sum(metrics.requests.values()) == 100
    assert sum(h.total for h in metrics.latency.values()) == 50.0


def test_asks_for_thousands_of_made_up_services_add_one_line_to_the_metrics_page():
    """10,000 asks for made-up names, each refused UNKNOWN_SERVICE, add two samples to
    /metrics: the ``(unknown)`` service's 10,000 and the dispatcher's unroutable count."""
    star = Star()
    worker, asker = star.actor("echo-1", ["echo"]), star.actor("asker")
    asker.ask(1, "echo")
    request, _ = worker.only(Kind.REQUEST)
    worker.answer(request)
    before = render(star.dispatcher.snapshot())
    for number in range(10_000):
        asker.ask(number + 2, f"made-up-{number}")
    refusals = asker.envelopes()
    assert len(refusals) == 10_001
    assert {e["st"] for e in refusals[1:]} == {Status.UNKNOWN_SERVICE}
    text = render(star.dispatcher.snapshot())
    assert sample(text, "actornet_requests_total", service="(unknown)", actor="",
                  status=404) == 10_000
    assert "made-up" not in text
    names = {line.rsplit(" ", 1)[0] for line in before.splitlines()}
    assert [line for line in text.splitlines() if line.rsplit(" ", 1)[0] not in names] == [
        'actornet_requests_total{service="(unknown)",actor="",status="404"} 10000',
        'actornet_dispatcher_events_total{event="unroutable"} 10000']
