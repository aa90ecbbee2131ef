"""The actor side: hooks, timers, deadlines and the link on a Clock, then actors
whose own names clash with the framework's old ones, in the cluster kit."""

import pytest
import pytest_twisted
from sample_actors import Stall
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, formatEvent
from twisted.python.failure import Failure

from actornet import (
    Actor,
    ActorLost,
    Cancelled,
    ProtocolError,
    RequestTimeout,
    ThreadRunner,
    Unauthorized,
    handler,
)
from actornet.actors.link import ActorLink
from actornet.actors.service import ActorService
from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame
from actornet.protocols.stamp import stamp_bytes


class NeverConnects:
    """A client endpoint whose connection attempts never finish."""

    def connect(self, factory):
        return Deferred()


class Ticker(Actor):
    periodic_interval = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticks = 0

    def periodic(self):
        self.ticks += 1


def linked(actor, clock):
    """``actor`` registered over a StringTransport link; returns the link's transport."""
    link = ActorLink(actor.context.session, clock)
    transport = StringTransport()
    link.makeConnection(transport)
    transport.clear()
    link.dataReceived(encode_frame({"k": Kind.READY, "id": 5, "name": actor.name, "ka": 10.0}))
    return link, transport


def frames(transport):
    """Decode every frame written to ``transport`` and clear it."""
    data, out = transport.value(), []
    transport.clear()
    while data:
        length = int.from_bytes(data[:4], "big")
        env_length = int.from_bytes(data[4:8], "big")
        out.append((codec.decode(data[8:8 + env_length]), data[8 + env_length:4 + length]))
        data = data[4 + length:]
    return out


def test_periodic_runs_every_interval_even_when_not_connected():
    """periodic() runs once per periodic_interval on the actor's clock."""
    clock = Clock()
    actor = Ticker("ticker", clock=clock)
    service = ActorService(actor, NeverConnects(), clock)
    service.startService()
    clock.advance(1.9)
    assert actor.ticks == 0
    clock.pump([0.1, 2.0, 2.0])
    assert actor.ticks == 3
    service.stopService()
    clock.advance(10)
    assert actor.ticks == 3


def test_max_lifetime_stops_the_actor():
    """An actor whose max_lifetime passes stops its service."""
    clock = Clock()
    actor = Actor("brief", options={"max_lifetime": 5}, clock=clock)
    service = ActorService(actor, NeverConnects(), clock)
    service.startService()
    clock.advance(4.9)
    assert service.running
    clock.advance(0.2)
    assert not service.running


def test_ask_times_out_on_the_askers_clock_exactly_once():
    """An unanswered ask fails with RequestTimeout at its deadline; a late answer is ignored."""
    clock = Clock()
    actor = Actor("asker", clock=clock)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m", {"x": 1}, timeout=3)
    (request, body), = frames(transport)
    assert request["ttl"] == 3.0 and codec.decode(body) == {"x": 1}
    clock.advance(2.9)
    assert not answer.called
    clock.advance(0.2)
    failures = []
    answer.addErrback(failures.append)
    assert failures[0].check(RequestTimeout)
    link.dataReceived(encode_frame({"k": Kind.RESPONSE, "id": request["id"],
                                    "st": Status.SUCCESS}, codec.encode({})))
    assert len(failures) == 1


def test_handler_names_and_unknown_methods():
    """@handler(name=...) serves under that name; an unknown method gets UNKNOWN_METHOD."""

    class Named(Actor):
        @handler(name="do-it")
        def do_it(self, bag):
            return {"done": bag["n"]}

    clock = Clock()
    actor = Named("named", clock=clock)
    link, transport = linked(actor, clock)
    request = {"k": Kind.REQUEST, "id": 9, "svc": "s", "m": "do-it", "src": "x", "r": []}
    link.dataReceived(encode_frame(request, codec.encode({"n": 4})))
    link.dataReceived(encode_frame(dict(request, id=10, m="nope"), codec.encode({})))
    (ok, ok_body), (missing, _) = frames(transport)
    assert ok["st"] == Status.SUCCESS and codec.decode(ok_body) == {"done": 4}
    assert missing["st"] == Status.UNKNOWN_METHOD
    assert missing["err"] == ["UnknownMethod", "named has no method 'nope' (it has: do-it)"]


@pytest.mark.parametrize("stamping", [True, False])
def test_stamping_can_be_switched_off_per_actor(stamping):
    """An actor with stamp_route False answers with the route it was given."""

    class Quiet(Actor):
        stamp_route = stamping

        @handler
        def m(self, bag):
            return None

    clock = Clock()
    actor = Quiet("quiet", clock=clock)
    link, transport = linked(actor, clock)
    given = [stamp_bytes("asker", "h", 1, 1, 1, 0.0, 0.0, 1),
             stamp_bytes("dispatcher", "h", 2, 1, 1, 0.0, 0.0, 2)]
    link.dataReceived(encode_frame(
        {"k": Kind.REQUEST, "id": 1, "svc": "s", "m": "m", "r": given}, codec.encode({})))
    (answer, _), = frames(transport)
    stamps = [codec.decode(stamp) for stamp in answer["r"]]
    names = [stamp[0] for stamp in stamps]
    assert names == (["asker", "dispatcher", "quiet"] if stamping else ["asker", "dispatcher"])
    if stamping:
        assert stamps[2][3] == 5 and stamps[2][7] == 3


def test_malformed_body_is_answered_malformed_body():
    """A request whose body is not a CBOR map gets MALFORMED_BODY, not a crash."""

    class Strict(Actor):
        @handler
        def m(self, bag):
            return None

    clock = Clock()
    actor = Strict("strict", clock=clock)
    link, transport = linked(actor, clock)
    for body in (b"\xff", codec.encode([1, 2])):
        link.dataReceived(encode_frame({"k": Kind.REQUEST, "id": 1, "svc": "s", "m": "m"}, body))
    statuses = [envelope["st"] for envelope, _ in frames(transport)]
    assert statuses == [Status.MALFORMED_BODY, Status.MALFORMED_BODY]


def test_link_sends_keepalives_only_when_idle_and_drops_a_silent_dispatcher():
    """With ka=1 and multiplier 3 the link pings an idle line, and aborts after 3 s of silence."""
    clock = Clock()
    actor = Actor("lonely", clock=clock)
    link = ActorLink(actor.context.session, clock)
    transport = StringTransport()
    link.makeConnection(transport)
    link.dataReceived(encode_frame({"k": Kind.READY, "id": 1, "name": "lonely", "ka": 1.0}))
    transport.clear()
    for _ in range(2):
        clock.advance(1.0)
        link.dataReceived(encode_frame({"k": Kind.KEEPALIVE}))
    assert [envelope["k"] for envelope, _ in frames(transport)] == [Kind.KEEPALIVE] * 2
    clock.advance(0.5)
    actor.publish("busy", {})
    clock.advance(0.5)
    assert [envelope["k"] for envelope, _ in frames(transport)] == [Kind.EVENT]
    clock.advance(2.0)
    assert not transport.disconnected
    clock.advance(1.0)
    assert transport.disconnected


def test_the_framework_keeps_one_attribute_on_an_actor():
    """A running actor's own namespace holds the user API and ``context``, nothing else."""
    clock = Clock()
    actor = Actor("plain", clock=clock)
    ActorService(actor, NeverConnects(), clock).startService()
    linked(actor, clock)
    assert sorted(vars(actor)) == ["clock", "config_dir", "context", "inventory", "name",
                                   "options", "runner", "services"]


def refused_link(clock, frame):
    actor = Actor("refused", clock=clock)
    link = ActorLink(actor.context.session, clock)
    link.makeConnection(StringTransport())
    failures = []
    link.ready.addErrback(failures.append)
    link.dataReceived(encode_frame(frame))
    link.connectionLost(Failure(ConnectionDone()))
    return failures[0].value


@pytest.mark.parametrize("kind", [Kind.REFUSED, Kind.ERROR])
def test_a_refusal_before_ready_fails_the_registration_with_its_reason(kind):
    """REFUSED (or, from an older dispatcher, an ERROR before READY) is the refusal."""
    frame = dict(messages.refused(Status.UNAUTHORIZED, "a token is required"), k=kind)
    error = refused_link(Clock(), frame)
    assert isinstance(error, Unauthorized)
    assert error.message == "the dispatcher refused refused: a token is required"


def test_an_error_after_ready_is_a_failed_tell_not_a_refusal():
    """ERROR on a registered link is logged as a failed tell; asks and the link go on."""
    clock = Clock()
    actor = Actor("teller", clock=clock)
    logged = []
    actor.context.session.log = Logger(observer=logged.append)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m")
    (request, _), = frames(transport)
    link.dataReceived(encode_frame(messages.tell_failed(Status.NO_WORKERS, "nobody serves 'x'")))
    assert [formatEvent(event) for event in logged] == [
        "teller: a tell failed: no_workers: nobody serves 'x'"]
    assert not transport.disconnected and actor.connected and not answer.called
    link.dataReceived(encode_frame(messages.response(request["id"]), codec.encode({"ok": 1})))
    assert answer.result == {"ok": 1}


def test_a_tell_whose_handler_fails_is_logged_and_not_answered():
    """A tell's handler that raises is logged at the actor that served it; no answer goes back."""

    class Fails(Actor):
        services = ("svc",)

        @handler
        def m(self, bag):
            raise KeyError("k")

    clock = Clock()
    actor = Fails("server", clock=clock)
    logged = []
    actor.context.session.log = Logger(observer=logged.append)
    link, transport = linked(actor, clock)
    link.dataReceived(encode_frame(messages.tell("svc", "m", [])))
    assert [formatEvent(event) for event in logged] == [
        "server: tell svc.m failed: 'k'"]
    assert frames(transport) == []


@pytest.mark.parametrize("err", [["KeyError"], [], ["KeyError", "'k'", "extra"]],
                         ids=["one-element", "empty", "three-elements"])
def test_a_failed_answer_with_an_odd_err_still_fails_the_ask(err):
    """An answer whose ``err`` is not [type, message] fails that ask, once, as a
    malformed answer, instead of raising and leaving it pending forever; the link stays."""
    clock = Clock()
    actor = Actor("asker", clock=clock)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m")
    (request, _), = frames(transport)
    failures = []
    answer.addErrback(failures.append)
    link.dataReceived(encode_frame({"k": Kind.RESPONSE, "id": request["id"],
                                    "st": Status.FAILURE, "err": err}))
    assert failures[0].check(ProtocolError)
    assert failures[0].value.status == Status.MALFORMED_ENVELOPE
    assert failures[0].value.message == "a malformed answer came: err is [type, message], both text"
    assert not transport.disconnecting


def test_a_refusal_after_ready_fails_pending_asks_with_its_reason():
    """The dispatcher refusing a registered link: its asks fail ACTOR_LOST, saying why."""
    clock = Clock()
    actor = Actor("late", clock=clock)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m")
    failures = []
    answer.addErrback(failures.append)
    link.dataReceived(encode_frame(messages.refused(Status.MALFORMED_ENVELOPE, "bad frame")))
    link.connectionLost(Failure(ConnectionDone()))
    assert failures[0].check(ActorLost) and "bad frame" in failures[0].value.message
    assert not actor.connected


def test_a_request_that_is_not_text_fails_before_anything_is_sent():
    """ask(1, 2) fails at once with MALFORMED_ENVELOPE and tell(1, 2) raises; no frame."""
    clock = Clock()
    actor = Actor("careful", clock=clock)
    link, transport = linked(actor, clock)
    failures = []
    actor.ask(1, 2).addErrback(failures.append)
    assert failures[0].check(ProtocolError)
    assert failures[0].value.status == Status.MALFORMED_ENVELOPE
    with pytest.raises(ProtocolError):
        actor.tell("svc", 2)
    assert frames(transport) == [] and actor.context.session.outstanding == 0


def test_requests_wait_for_prepare_on_their_own_link():
    """Requests that come while prepare() runs are served after it; a prepare of an
    earlier, lost link finishing late neither serves nor drops the new link's requests."""

    class Slow(Actor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.preparing = []
            self.connects = 0

        def prepare(self):
            self.preparing.append(Deferred())
            return self.preparing[-1]

        def on_connect(self):
            self.connects += 1

        @handler
        def m(self, bag):
            return {"n": bag["n"]}

    clock = Clock()
    actor = Slow("slow", clock=clock)
    first, _ = linked(actor, clock)
    first.connectionLost(Failure(ConnectionDone()))
    second, transport = linked(actor, clock)
    second.dataReceived(encode_frame({"k": Kind.REQUEST, "id": 1, "svc": "s", "m": "m"},
                                     codec.encode({"n": 1})))
    actor.preparing[0].callback(None)
    assert frames(transport) == [] and actor.connects == 0
    actor.preparing[1].callback(None)
    (answer, body), = frames(transport)
    assert answer["id"] == 1 and codec.decode(body) == {"n": 1} and actor.connects == 1
    assert actor.when_attached().result is second


class InlineThreads:
    """A reactor whose thread pool runs a job only when the test says so."""

    def __init__(self):
        self.jobs = []

    def getThreadPool(self):
        return self

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        self.jobs.append(lambda: on_result(True, f(*args, **kwargs)))

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


def test_thread_runner_counts_the_jobs_it_has_not_finished():
    """``busy`` rises with each job and falls as each one's result is delivered."""
    threads = InlineThreads()
    runner = ThreadRunner(threads)
    first, second = runner.run(pow, 2, 3), runner.run(pow, 2, 4)
    assert runner.busy == 2 and not first.called
    threads.jobs.pop(0)()
    assert runner.busy == 1 and first.result == 8
    threads.jobs.pop(0)()
    assert runner.busy == 0 and second.result == 16


class Crowded(Actor):
    """Names its own attributes and handlers as the framework's insides once were."""

    services = ("crowded",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.link = "the user's own link"
        self.handlers = {"mine": True}
        self.session = []
        self.state = {"connects": 0, "news": []}
        self.received = []
        self.subscribe("crowded.news", lambda bag: self.state["news"].append(bag["n"]))

    def on_connect(self):
        self.state["connects"] += 1

    @handler
    def received(self, bag):
        self.received.append(bag["n"])
        return {"received": self.received, "link": self.link, "handlers": self.handlers}

    @handler
    def session(self, bag):
        self.session.append(bag["note"])

    @handler
    def state(self, bag):
        return {"state": self.state, "session": self.session}

    @handler
    async def link(self, bag):
        answer = await self.ask("crowded", "state")
        return {"asked_itself": answer["state"]["connects"]}


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_an_actor_may_name_its_own_things_link_handlers_received_session_state(cluster):
    """Asks, tells, events, asks from inside and reconnects work for an actor whose
    attributes and handlers are called link, handlers, received, session and state."""
    actor = await cluster.add(Crowded("crowded"))
    client = await cluster.client()
    answer = await client.ask("crowded", "received", {"n": 1})
    assert answer == {"received": [1], "link": "the user's own link",
                      "handlers": {"mine": True}}
    client.tell("crowded", "session", {"note": "told"})
    client.publish("crowded.news", {"n": 7})
    await cluster.wait_for(lambda: actor.session == ["told"] and actor.state["news"] == [7])
    assert await client.ask("crowded", "link") == {"asked_itself": 1}

    await cluster.cut("crowded")
    await cluster.registered("crowded")
    await actor.when_attached()
    answer = await client.ask("crowded", "state")
    assert answer == {"state": {"connects": 2, "news": [7]}, "session": ["told"]}
    client.publish("crowded.news", {"n": 8})
    client.tell("crowded", "session", {"note": "again"})
    await cluster.wait_for(lambda: actor.state["news"] == [7, 8] and len(actor.session) == 2)
    assert (await client.ask("crowded", "received", {"n": 2}))["received"] == [1, 2]
    assert actor.link == "the user's own link" and actor.handlers == {"mine": True}


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_a_request_that_is_not_text_fails_alone_and_others_still_succeed(cluster):
    """ask(1, 2) fails with MALFORMED_ENVELOPE at the asker; the client's other pending
    asks still get their answers and the client stays connected."""
    await cluster.add(Stall("stall-1"))
    stall = cluster.services["stall-1"].actor
    client = await cluster.client()
    pending = client.ask("stall", "wait")
    await cluster.wait_for(lambda: len(stall.waiting) == 1)
    with pytest.raises(ProtocolError) as raised:
        await client.ask(1, 2)
    assert raised.value.status == Status.MALFORMED_ENVELOPE
    with pytest.raises(ProtocolError):
        client.tell("stall", b"wait")
    stall.waiting[0].callback({"from": "stall-1"})
    assert (await pending)["from"] == "stall-1"
    assert client.connected
    second = client.ask("stall", "wait")
    await cluster.wait_for(lambda: len(stall.waiting) == 2)
    stall.waiting[1].callback({"again": True})
    assert (await second)["again"] is True


def test_a_handler_method_may_not_hide_the_actor_api():
    """A handler method called ``ask`` would hide Actor.ask: the actor cannot be built,
    and the message says how to serve the name anyway."""

    class Shadowing(Actor):
        @handler
        def ask(self, bag):
            return {}

    class Served(Actor):
        @handler(name="ask")
        def answer_ask(self, bag):
            return {}

    with pytest.raises(TypeError) as raised:
        Shadowing("s", clock=Clock())
    assert str(raised.value) == (
        "Shadowing.ask: a handler method named 'ask' would hide Actor.ask; name the method "
        "otherwise and serve it with @handler(name='ask')")
    assert set(Served("s", clock=Clock()).context.handlers.methods) == {"ask"}


def test_stray_progress_and_cancel_frames_change_nothing_at_an_actor():
    """A CANCEL for no request being handled, a PROGRESS for no ask, one with a
    malformed body and a progress callback that raises are all dropped; the ask
    they surround is answered once."""
    clock = Clock()
    actor = Actor("asker", clock=clock)
    link, transport = linked(actor, clock)
    failing = []
    answer = actor.ask("svc", "m", on_progress=lambda bag: failing.append(1 / 0))
    (request, _), = frames(transport)
    link.dataReceived(encode_frame(messages.cancel(42)))
    link.dataReceived(encode_frame(messages.progress(77), codec.encode({"done": 1})))
    link.dataReceived(encode_frame(messages.progress(request["id"]), b"\xff"))
    link.dataReceived(encode_frame(messages.progress(request["id"]), codec.encode({"a": 1})))
    link.dataReceived(encode_frame({"k": Kind.RESPONSE, "id": request["id"],
                                    "st": Status.SUCCESS}, codec.encode({"ok": True})))
    assert answer.result == {"ok": True}
    assert frames(transport) == []
    assert (failing, actor.context.session.outstanding) == ([], 0)


def test_cancel_sends_one_cancel_frame_and_fails_the_ask_once():
    """``cancel()`` sends CANCEL with the ask's id and fails it with Cancelled; a late
    answer and a second cancel change nothing."""
    clock = Clock()
    actor = Actor("asker", clock=clock)
    link, transport = linked(actor, clock)
    answer = actor.ask("svc", "m")
    (request, _), = frames(transport)
    failures = []
    answer.addErrback(failures.append)
    answer.cancel()
    answer.cancel()
    assert frames(transport) == [({"k": Kind.CANCEL, "id": request["id"]}, b"")]
    link.dataReceived(encode_frame({"k": Kind.RESPONSE, "id": request["id"],
                                    "st": Status.SUCCESS}, codec.encode({})))
    assert [failure.type for failure in failures] == [Cancelled]
    assert failures[0].value.status == Status.CANCELLED


def test_a_cancelled_handler_sends_no_answer_and_progress_after_it_goes_nowhere():
    """CANCEL stops a Deferred handler; nothing is sent for it afterwards, not even
    its progress."""

    class Working(Actor):
        kept = None

        @handler
        def work(self, bag):
            self.kept = bag
            self.progress(bag, {"done": 0})
            return Deferred()

    clock = Clock()
    actor = Working("worker", clock=clock)
    link, transport = linked(actor, clock)
    link.dataReceived(encode_frame({"k": Kind.REQUEST, "id": 3, "svc": "s", "m": "work",
                                    "r": []}, codec.encode({})))
    (report, body), = frames(transport)
    assert (report["k"], report["id"], codec.decode(body)) == (Kind.PROGRESS, 3, {"done": 0})
    link.dataReceived(encode_frame(messages.cancel(3)))
    assert actor.progress(actor.kept, {"done": 1}) is False
    assert frames(transport) == []
    assert actor.context.session.handling == 0
