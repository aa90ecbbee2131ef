"""The dashboard's picture, its event stream and its trace pages.

The picture and the stream run on a Clock with hand-made snapshots; the pages
are also served over real loopback sockets from a real dispatcher (the kit's
cluster), its journal a real SQLite file.
"""

import json

import pytest
import pytest_twisted
from sample_actors import Echo
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, readBody
from twisted.web.test.requesthelper import DummyRequest

from actornet.dashboard.lifecycle import LifecycleLog
from actornet.dashboard.picture import PictureMaker
from actornet.dashboard.rates import Rates
from actornet.dashboard.site import STATIC, Dashboard
from actornet.dashboard.stream import EventStream, PictureFeed
from actornet.dispatcher.core import Dispatcher
from actornet.dispatcher.settings import DispatcherSettings
from actornet.dispatcher.snapshot import PeerView, Snapshot
from actornet.dispatcher.web import monitoring_site
from actornet.protocols import codec, messages
from actornet.protocols.codes import LIFECYCLE_TOPIC
from actornet.testing import Cluster

pytestmark = pytest.mark.timeout(20)


def peer(name, services, in_flight=0, handled=0):
    return PeerView(name, tuple(services), 1, 0.0, 0.0, 0, 0, in_flight, handled, 0, 0, (),
                    False, 0)


def snapshot(now, peers=(), requests=None, federation=None):
    return Snapshot(name="dispatcher", host="h", pid=1, now=now, started_at=0.0,
                    settings=None, endpoints=(), connections=len(peers),
                    in_flight=sum(p.in_flight for p in peers), peers=tuple(peers),
                    subscriptions={}, counters={}, requests=requests or {}, latency={},
                    federation=federation)


class Star:
    """A picture maker over a snapshot the test sets, on a Clock."""

    def __init__(self):
        self.clock = Clock()
        self.deaths = 0
        self.lifecycle = LifecycleLog(self.clock, self._died)
        self.now = snapshot(0.0)
        self.maker = PictureMaker(lambda: self.now, self.lifecycle)

    def _died(self):
        self.deaths += 1

    def picture(self, now, peers=(), requests=None, federation=None):
        self.clock.advance(now - self.clock.seconds())
        self.now = snapshot(now, peers, requests, federation)
        return self.maker.picture()


def actors(picture):
    """``{name: (status, in_flight, rate, errors)}`` over every service group."""
    return {actor["name"]: (actor["status"], actor["in_flight"], actor["rate"], actor["errors"])
            for service in picture["services"] for actor in service["actors"]}


# -- rates --------------------------------------------------------------------


def test_rates_are_counter_deltas_over_the_time_between_readings():
    """12 more requests (3 failed, 2 forwarded) in 2 s are 6 req/s and 1.5 err/s,
    per actor and per service: a forwarded request is a request, not an error."""
    rates = Rates()
    assert rates.update(100.0, {("math", "math-1", 200): 4}) == {}
    got = rates.update(102.0, {("math", "math-1", 200): 11, ("math", "math-1", 500): 3,
                               ("math", "math-1", "forwarded"): 2})
    assert got[("actor", "math-1")] == (6.0, 1.5)
    assert got[("service", "math")] == (6.0, 1.5)


def test_a_reading_inside_the_window_keeps_the_last_rates_and_a_reset_counter_is_zero():
    """A reading 0.2 s after the last gives the same rates; a counter that went
    down gives 0, never a negative rate."""
    rates = Rates(window=1.0)
    rates.update(0.0, {("s", "a", 200): 0})
    first = rates.update(1.0, {("s", "a", 200): 4})
    assert rates.update(1.2, {("s", "a", 200): 400}) == first == {
        ("actor", "a"): (4.0, 0.0), ("service", "s"): (4.0, 0.0)}
    assert rates.update(2.5, {("s", "a", 200): 1})[("actor", "a")] == (0.0, 0.0)


def test_a_refused_request_counts_for_its_service_only():
    """A request no actor was given (actor "") has no actor row."""
    rates = Rates()
    rates.update(0.0, {})
    got = rates.update(1.0, {("(unknown)", "", 404): 3})
    assert got == {("service", "(unknown)"): (3.0, 3.0)}


# -- the picture ----------------------------------------------------------------


def test_actors_are_grouped_by_service_with_alive_busy_and_rates():
    """An actor with requests in flight is busy, one without is alive; rates
    come from the counters between two pictures."""
    star = Star()
    peers = [peer("math-1", ["math"], in_flight=2), peer("math-2", ["math"]),
             peer("intake", ["billing"])]
    star.picture(10.0, peers, {("math", "math-1", 200): 0})
    picture = star.picture(12.0, peers, {("math", "math-1", 200): 6, ("math", "math-1", 504): 2})
    assert [service["name"] for service in picture["services"]] == ["billing", "math"]
    assert actors(picture) == {"math-1": ("busy", 2, 4.0, 1.0), "math-2": ("alive", 0, 0.0, 0.0),
                               "intake": ("alive", 0, 0.0, 0.0)}
    assert picture["services"][1]["rate"] == 4.0
    assert picture["totals"] == {"actors": 3, "busy": 1, "dead": 0, "in_flight": 2,
                                 "rate": 4.0, "errors": 1.0}


def test_an_actor_that_died_is_dead_until_it_is_back():
    """After a death it is listed dead under its services; once connected again
    it is alive, and the death stays among the recent events."""
    star = Star()
    star.picture(1.0, [peer("math-1", ["math"]), peer("math-2", ["math"])])
    star.lifecycle.heard("died", "math-2", {"services": ["math"], "reason": "keepalives lapsed"})
    assert star.deaths == 1
    picture = star.picture(2.0, [peer("math-1", ["math"])])
    assert actors(picture)["math-2"] == ("dead", 0, None, None)
    assert picture["totals"]["dead"] == 1
    assert picture["events"] == [{"at": 1.0, "event": "died", "name": "math-2",
                                  "reason": "keepalives lapsed"}]
    back = star.picture(3.0, [peer("math-1", ["math"]), peer("math-2", ["math"])])
    assert actors(back)["math-2"][0] == "alive"
    assert star.lifecycle.dead() == []
    assert [event["name"] for event in back["events"]] == ["math-2"]


def test_a_supervisor_giving_up_keeps_the_actor_dead_under_its_services():
    """restarting is listed; gave_up after a death keeps the services heard at the death."""
    star = Star()
    star.lifecycle.heard("died", "jobs", {"services": ["jobs"]})
    star.clock.advance(1)
    star.lifecycle.heard("restarting", "jobs", {"delay": 0.5})
    star.clock.advance(1)
    star.lifecycle.heard("gave_up", "jobs", {"reason": "3 restarts in 60 s"})
    picture = star.picture(3.0)
    assert [(e["event"], e["at"]) for e in picture["events"]] == [
        ("gave_up", 2.0), ("restarting", 1.0), ("died", 0.0)]
    assert picture["events"][1]["delay"] == 0.5
    assert picture["services"] == [{"name": "jobs", "rate": 0.0, "errors": 0.0, "actors": [
        {"name": "jobs", "services": ["jobs"], "dispatcher": None, "status": "dead",
         "in_flight": 0, "handled": None, "rate": None, "errors": None, "since": 2.0}]}]


def test_the_recent_events_and_the_dead_are_bounded():
    """Past its bounds the log keeps the newest events and forgets the longest dead."""
    log = LifecycleLog(Clock(), recent=3, max_dead=2)
    for name in ("a", "b", "c", "d"):
        log.heard("died", name, {"services": ["s"]})
    log.heard("joined", "x", {})
    assert [event["name"] for event in log.events()] == ["d", "c", "b"]
    assert [row["name"] for row in log.dead()] == ["c", "d"]


def test_other_dispatchers_and_their_actors_come_from_the_federation_view():
    """With a federation every dispatcher is shown, and its actors under their services."""
    star = Star()
    federation = {"network": "prod", "connected": True, "down": False,
                  "dispatchers": [{"name": "B", "status": "alive", "host": "b", "pid": 7,
                                   "actors": 1, "in_flight": 1}],
                  "actors": [{"name": "math-9", "services": ["math"], "dispatcher": "B",
                              "in_flight": 1}]}
    picture = star.picture(1.0, [peer("math-1", ["math"])], federation=federation)
    assert [(d["name"], d["here"]) for d in picture["dispatchers"]] == [
        ("dispatcher", True), ("B", False)]
    assert picture["network"] == "prod"
    assert actors(picture)["math-9"] == ("busy", 1, None, None)


def test_the_log_hears_what_the_dispatcher_publishes_and_ignores_junk():
    """Lifecycle and supervisor events published by a dispatcher reach its
    dashboard; a malformed one is ignored and the dispatcher goes on."""
    clock = Clock()
    dispatcher = Dispatcher(clock, DispatcherSettings())
    dashboard = Dashboard(dispatcher, clock)
    dashboard.startService()
    dispatcher.publish(messages.event(LIFECYCLE_TOPIC, [], "dispatcher"), b"\xff junk")
    dispatcher.announce_supervisor_event({"event": "restarting", "name": "jobs", "delay": 1.0})
    dispatcher.publish(messages.event(LIFECYCLE_TOPIC, [], "dispatcher"), codec.encode(
        {"event": "died", "name": "math-1", "services": ["math"], "reason": "closed"}))
    assert [(e["event"], e["name"]) for e in dashboard.lifecycle.events()] == [
        ("died", "math-1"), ("restarting", "jobs")]
    dashboard.stopService()
    assert dispatcher.lifecycle_listeners == []


def test_a_failing_listener_does_not_stop_the_dispatchers_own_events():
    """A listener that raises is logged; the event is still published."""
    dispatcher = Dispatcher(Clock(), DispatcherSettings())

    def broken(envelope, body):
        raise RuntimeError("broken listener")
    dispatcher.lifecycle_listeners.append(broken)
    dispatcher.announce_supervisor_event({"event": "restarting", "name": "jobs"})
    assert dispatcher.stats["events_unheard"] == 1


# -- the event stream -----------------------------------------------------------


def frames(request):
    """The server-sent events written to ``request``: ``[(event, data), ...]``."""
    text = b"".join(request.written).decode()
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def streaming(feed, resource=None):
    request = DummyRequest([b"events"])
    body = (resource or EventStream(feed)).render_GET(request)
    return request, body


def test_a_stream_gets_a_picture_at_once_then_one_per_interval():
    """Each picture is one ``event: picture`` with its JSON on one data line."""
    clock, counter = Clock(), iter(range(100))
    feed = PictureFeed(clock, lambda: {"n": next(counter)}, interval=1.0)
    request, _ = streaming(feed)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/event-stream; charset=utf-8"]
    assert b"".join(request.written).startswith(b"retry: 2000\n\nevent: picture\ndata: ")
    clock.advance(1.0)
    clock.advance(1.0)
    assert frames(request) == [("picture", {"n": 0}), ("picture", {"n": 1}),
                               ("picture", {"n": 2})]


def test_a_death_sends_a_picture_at_once_and_several_deaths_send_one():
    """send_soon makes one picture on the next turn, however often it is called."""
    clock, counter = Clock(), iter(range(100))
    feed = PictureFeed(clock, lambda: {"n": next(counter)}, interval=10.0)
    request, _ = streaming(feed)
    feed.send_soon()
    feed.send_soon()
    clock.advance(0)
    assert [data["n"] for _, data in frames(request)] == [0, 1]


def test_a_browser_that_leaves_is_forgotten_and_the_timer_stops():
    """A disconnect (notifyFinish failing) drops the stream; with none left no
    picture is made."""
    clock, made = Clock(), []
    feed = PictureFeed(clock, lambda: made.append(1) or {}, interval=1.0)
    request, _ = streaming(feed)
    request.processingFailed(Failure(ConnectionError("browser closed the tab")))
    assert feed.streams == set()
    clock.advance(5.0)
    assert len(made) == 1
    assert clock.getDelayedCalls() == []


def test_streams_are_bounded_with_a_clear_refusal():
    """Past max_streams a new stream is a 503 saying why; the open ones go on."""
    clock = Clock()
    feed = PictureFeed(clock, dict, max_streams=2)
    first, _ = streaming(feed)
    streaming(feed)
    refused, body = streaming(feed)
    assert refused.responseCode == 503
    assert body == b"too many dashboard streams are open (the limit is 2); close one and retry\n"
    assert len(feed.streams) == 2
    clock.advance(1.0)
    assert len(frames(first)) == 2


def test_stopping_the_feed_ends_every_stream():
    """A dispatcher that stops closes its browsers' streams."""
    clock = Clock()
    feed = PictureFeed(clock, dict)
    request, _ = streaming(feed)
    feed.stop()
    assert request.finished == 1
    assert clock.getDelayedCalls() == []


# -- over real sockets ----------------------------------------------------------


@pytest.fixture
def served():
    """A cluster on loopback with a dashboard at a real HTTP port; yields
    ``(cluster, dashboard, base_url)`` and a way to start it with settings."""
    started = []

    async def start(**settings):
        cluster = await Cluster(**settings).start()
        dashboard = Dashboard(cluster.dispatcher, reactor, interval=0.2)
        dashboard.startService()
        port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            monitoring_site(cluster.dispatcher, root=dashboard.root()))
        started.append((cluster, dashboard, port))
        return cluster, dashboard, f"http://127.0.0.1:{port.getHost().port}"

    yield start
    for cluster, dashboard, port in started:
        dashboard.stopService()
        pytest_twisted.blockon(port.stopListening())
        pytest_twisted.blockon(Deferred.fromCoroutine(cluster.stop()))


async def get(url):
    """``(status, content type, body)`` of a GET."""
    response = await Agent(reactor).request(b"GET", url.encode())
    body = await readBody(response)
    return response.code, response.headers.getRawHeaders(b"content-type")[0], body


@pytest_twisted.ensureDeferred
async def test_the_page_its_files_and_the_monitoring_pages_are_served(served):
    """``/`` is the page, its script and style come with it, /metrics and /status stay."""
    cluster, dashboard, base = await served()
    code, kind, page = await get(base + "/")
    assert (code, kind.split(b";")[0]) == (200, b"text/html")
    assert b'<script type="module" src="dashboard.js">' in page
    for name, kind in (("dashboard.js", b"text/javascript"), ("dashboard.css", b"text/css")):
        code, got, body = await get(f"{base}/{name}")
        assert (code, got, body) == (200, kind, (STATIC / name).read_bytes())
    code, _, status = await get(base + "/status")
    assert json.loads(status)["status"] == "ok"
    code, _, metrics = await get(base + "/metrics")
    assert b"actornet_connections" in metrics


class EventReader(Protocol):
    """Reads an event stream off a real connection and lets a test wait for a picture."""

    def __init__(self):
        self.buffer = b""
        self.waiting = []

    def dataReceived(self, data):
        self.buffer += data
        waiting, self.waiting = self.waiting, []
        for condition, done in waiting:
            self._check(condition, done)

    def pictures(self):
        body = self.buffer.split(b"\r\n\r\n", 1)[-1]
        return [json.loads(line[len(b"data: "):]) for line in body.split(b"\n")
                if line.startswith(b"data: ")]

    def wait_for(self, condition):
        done = Deferred()
        self._check(condition, done)
        return done.addTimeout(10, reactor)

    def _check(self, condition, done):
        found = next((p for p in self.pictures() if condition(p)), None)
        if found is not None:
            done.callback(found)
        else:
            self.waiting.append((condition, done))


@pytest_twisted.ensureDeferred
async def test_a_killed_actor_turns_dead_in_the_stream_and_a_closed_stream_is_forgotten(served):
    """Over a real connection: echo-1 is alive, then dead once killed; closing
    the connection takes the stream off the feed."""
    cluster, dashboard, base = await served()
    await cluster.add(Echo("echo-1"))
    port = int(base.rsplit(":", 1)[1])
    reader = EventReader()
    connected = Deferred()
    reader.connectionMade = lambda: connected.callback(None)
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(_Once(reader))
    await connected
    reader.transport.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.wait_for(lambda p: actors(p).get("echo-1", ("",))[0] == "alive")
    await cluster.kill("echo-1")
    dead = await reader.wait_for(lambda p: actors(p).get("echo-1", ("",))[0] == "dead")
    assert dead["events"][0]["event"] in ("died", "left")
    assert len(dashboard.feed.streams) == 1
    reader.transport.loseConnection()
    await until(lambda: not dashboard.feed.streams)


async def until(condition, timeout=5.0):
    """Check ``condition`` every few milliseconds until it holds; fail after ``timeout``."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError(f"not within {timeout}s")
        await deferLater(reactor, 0.01)
        waited += 0.01


class _Once:
    """A factory handing out one given protocol."""

    def __init__(self, protocol):
        self.protocol = protocol

    def buildProtocol(self, addr):
        return self.protocol

    def doStart(self):
        pass

    def doStop(self):
        pass


@pytest_twisted.ensureDeferred
async def test_trace_pages_draw_bags_from_the_journal_and_refuse_bad_keys(served, tmp_path):
    """With a journal: the newest keys are listed, a key's route is an SVG with
    its hops, and bad or unknown keys are 400 and 404 with a line saying why."""
    cluster, dashboard, base = await served(journal=str(tmp_path / "journal.db"))
    await cluster.add(Echo("echo-1"))
    client = await cluster.client()
    await client.ask("echo", "echo", {"x": 1})
    code, kind, listing = await get(base + "/traces.json?n=5")
    assert (code, kind) == (200, b"application/json")
    bags = json.loads(listing)
    echo = next(bag for bag in bags if bag["service"] == "echo")
    code, kind, svg = await get(f"{base}/trace.svg?key={echo['key']}")
    assert (code, kind) == (200, b"image/svg+xml")
    assert svg.startswith(b"<svg ") and svg.count(b'<g class="bag"') == 1
    assert svg.count(b'<g class="hop dispatcher') >= 1 and b"echo-1" in svg
    code, _, last = await get(base + "/trace.svg?last=2")
    assert (code, last.count(b'<g class="bag"')) == (200, 2)
    assert await get(base + "/trace.svg?key=nonsense") == (
        400, b"text/plain; charset=utf-8",
        b"a bag's key is SERVER:SEQ (e.g. dispatcher:42), not 'nonsense'\n")
    for key in ("dispatcher:%C2%B2", "dispatcher:" + "9" * 30, ":12", "dispatcher:-1"):
        code, _, why = await get(f"{base}/trace.svg?key={key}")
        assert (code, why.startswith(b"a bag's key is SERVER:SEQ")) == (400, True), key
    code, _, missing = await get(base + "/trace.svg?key=dispatcher:987654")
    assert (code, missing) == (404, b"the journal holds no bag under dispatcher:987654 "
                                    b"(never kept, or dropped by its size and age bounds)\n")
    assert (await get(base + "/trace.svg?last=500"))[::2] == (
        400, b"last is a whole number from 1 to 50, not '500'\n")
    assert (await get(base + "/trace.svg"))[0] == 400
    code, _, picture = await get(base + "/picture.json")
    assert json.loads(picture)["journal"] is True


@pytest_twisted.ensureDeferred
async def test_without_a_journal_the_trace_pages_say_so(served):
    """No journal: 404 and the line naming the setting to turn it on."""
    cluster, dashboard, base = await served()
    code, _, body = await get(base + "/traces.json")
    assert code == 404
    assert body.startswith(b"this dispatcher keeps no journal") and b'journal = "PATH"' in body



@pytest_twisted.ensureDeferred
async def test_in_a_federation_the_picture_shows_every_dispatcher_and_their_actors(
        actornet_federation):
    """Over a real NATS cluster: A's dashboard shows B and B's actor, alive, under
    its service and its dispatcher; killed there, it turns dead here (B's death
    event, relayed over NATS, reaches A's dashboard)."""
    network = await actornet_federation(["A", "B"])
    await network["B"].add(Echo("echo-b"))
    await network["A"].add(Echo("echo-a"))
    await network.reaches("echo-b")
    dashboard = Dashboard(network["A"].dispatcher, reactor)
    picture = dashboard.pictures.picture()
    assert [(d["name"], d["here"], d["status"]) for d in picture["dispatchers"]] == [
        ("A", True, "alive"), ("B", False, "alive")]
    echo, = picture["services"]
    assert [(a["name"], a["dispatcher"], a["status"]) for a in echo["actors"]] == [
        ("echo-a", "A", "alive"), ("echo-b", "B", "alive")]
    assert dashboard.dispatcher_names() == ["A", "B"]

    dashboard.startService()
    try:
        await network["B"].kill("echo-b")

        def echo_b():
            echo, = dashboard.pictures.picture()["services"]
            return {a["name"]: a["status"] for a in echo["actors"]}.get("echo-b")

        await network.wait_for(lambda: echo_b() == "dead", what="echo-b dead on A's page")
        assert dashboard.lifecycle.recent[0]["name"] == "echo-b"
    finally:
        dashboard.stopService()
