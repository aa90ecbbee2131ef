"""PROGRESS and CANCEL at the dispatcher, driven frame by frame."""

from test_dispatcher import Star, stamp

from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status


def progress(worker, request, data, **extra):
    """The worker reports ``data`` on ``request`` (an envelope it received)."""
    route = request.get("r", []) + [stamp(worker.peer.name, len(request.get("r", [])) + 1)]
    worker.send({**messages.progress(request["id"], route), **extra}, codec.encode(data))


def asked(star, services=("svc",)):
    """A worker, an asker, and the request the asker sent (as the worker got it)."""
    worker = star.actor("worker", list(services))
    asker = star.actor("asker")
    asker.ask(7, "svc")
    request, _ = worker.only(Kind.REQUEST)
    return worker, asker, request


def test_progress_goes_to_the_asker_under_its_id_stamped_and_before_the_answer():
    """Each report reaches the asker in order, under the asker's id, from the worker,
    with the dispatcher's stamp; the answer comes after them."""
    star = Star()
    worker, asker, request = asked(star)
    for step in (1, 2):
        progress(worker, request, {"step": step})
    worker.answer(request)
    frames = asker.frames()
    assert [envelope["k"] for envelope, _ in frames] == [Kind.PROGRESS, Kind.PROGRESS,
                                                         Kind.RESPONSE]
    assert [codec.decode(body) for _, body in frames[:2]] == [{"step": 1}, {"step": 2}]
    first = frames[0][0]
    assert (first["id"], first["src"]) == (7, "worker")
    assert len(first["r"]) == len(request["r"]) + 2
    assert star.dispatcher.stats["progress"] == 2


def test_progress_of_a_finished_request_is_a_dead_letter():
    """A report sent after the answer reaches nobody and is counted."""
    star = Star()
    worker, asker, request = asked(star)
    worker.answer(request)
    asker.only(Kind.RESPONSE)
    dead = star.dispatcher.stats["dead_letters"]
    progress(worker, request, {"step": 9})
    assert asker.frames() == []
    assert star.dispatcher.stats["dead_letters"] == dead + 1


def test_progress_from_another_worker_or_with_a_forged_route_reaches_nobody():
    """Only the worker of a request may report on it, on the route it was given."""
    star = Star()
    worker, asker, request = asked(star)
    intruder = star.actor("intruder", ["other"])
    progress(intruder, request, {"fake": True})
    progress(worker, request, {"fake": True}, r=[stamp("someone", 1)])
    assert asker.frames() == []
    assert star.dispatcher.stats["dead_letters"] == 2
    worker.answer(request)
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.SUCCESS


def test_progress_of_a_gathered_request_names_each_actor():
    """Reports of an ``all`` request come to the asker tagged with their actor's name."""
    star = Star()
    first, second = star.actor("w1", ["svc"]), star.actor("w2", ["svc"])
    asker = star.actor("asker")
    asker.ask(3, "svc", tgt="all")
    for worker in (second, first):
        progress(worker, worker.only(Kind.REQUEST)[0], {"at": worker.peer.name})
    reports = [(envelope["id"], envelope["src"], codec.decode(body))
               for envelope, body in asker.frames()]
    assert reports == [(3, "w2", {"at": "w2"}), (3, "w1", {"at": "w1"})]


def test_cancel_reaches_the_worker_under_its_own_id_and_empties_the_table():
    """CANCEL from the asker is sent on to the worker, nothing is answered, and a
    late answer is a dead letter."""
    star = Star()
    worker, asker, request = asked(star)
    asker.send(messages.cancel(7))
    assert worker.only(Kind.CANCEL)[0]["id"] == request["id"]
    assert len(star.dispatcher.inflight) == 0
    assert star.dispatcher.stats["cancelled"] == 1
    dead = star.dispatcher.stats["dead_letters"]
    worker.answer(request)
    assert asker.frames() == []
    assert star.dispatcher.stats["dead_letters"] == dead + 1


def test_cancel_of_a_gathered_request_reaches_every_actor_still_working():
    """Cancelling an ``all`` request cancels it at each actor that has not answered."""
    star = Star()
    first, second = star.actor("w1", ["svc"]), star.actor("w2", ["svc"])
    asker = star.actor("asker")
    asker.ask(3, "svc", tgt="all")
    first.answer(first.only(Kind.REQUEST)[0])
    request, _ = second.only(Kind.REQUEST)
    asker.send(messages.cancel(3))
    assert second.only(Kind.CANCEL)[0]["id"] == request["id"]
    assert first.frames() == []
    assert len(star.dispatcher.inflight) == 0


def test_cancel_of_another_askers_request_or_an_unknown_one_changes_nothing():
    """A peer can cancel only its own requests: another asker's id, an unknown id
    and a cancel after the answer are dead letters."""
    star = Star()
    worker, asker, request = asked(star)
    other = star.actor("other")
    other.send(messages.cancel(7))
    asker.send(messages.cancel(99))
    assert worker.frames() == []
    assert len(star.dispatcher.inflight) == 1
    worker.answer(request)
    asker.only(Kind.RESPONSE)
    asker.send(messages.cancel(7))
    assert worker.frames() == []
    assert star.dispatcher.stats["dead_letters"] == 3
    assert star.dispatcher.stats["cancelled"] == 0


def test_a_malformed_progress_or_cancel_closes_its_sender_alone():
    """A PROGRESS or CANCEL whose id is not an integer (or missing) is refused like
    any malformed envelope; other askers' requests go on."""
    star = Star()
    worker, asker, request = asked(star)
    for name, envelope in (("h1", {"k": Kind.CANCEL, "id": "7"}), ("h2", {"k": Kind.PROGRESS})):
        hostile = star.actor(name)
        hostile.send(envelope)
        closed, _ = hostile.only(Kind.REFUSED)
        assert closed["st"] == Status.MALFORMED_ENVELOPE
    worker.answer(request)
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.SUCCESS


def test_a_deadline_that_passes_cancels_the_request_at_its_worker():
    """The asker gets TIMEOUT and the worker a CANCEL, so it stops working."""
    star = Star()
    worker = star.actor("worker", ["svc"])
    asker = star.actor("asker")
    asker.ask(4, "svc", ttl=1.0)
    request, _ = worker.only(Kind.REQUEST)
    star.clock.advance(1.5)
    assert asker.only(Kind.RESPONSE)[0]["st"] == Status.TIMEOUT
    assert worker.only(Kind.CANCEL)[0]["id"] == request["id"]
