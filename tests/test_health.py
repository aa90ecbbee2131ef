"""The health endpoint (a thread of its own), the reactor watch it reads, and the
monitoring endpoints' optional token."""

import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from test_dispatcher import Star
from test_metrics import sample
from test_twistd import BIN, start_twistd, stop
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread

from actornet.dispatcher.bearer import refusal
from actornet.dispatcher.health import HealthServer
from actornet.dispatcher.watch import ReactorWatch
from actornet.dispatcher.web import monitoring_site

pytestmark = pytest.mark.timeout(30)


class ThreadlessReactor(Clock):
    """A Clock whose ``callFromThread`` runs at once (a reactor that is free) or,
    once ``blocked``, keeps the calls until ``unblock()`` (a reactor that is busy)."""

    def __init__(self):
        super().__init__()
        self.blocked = False
        self.queued = []

    def callFromThread(self, f, *args):
        if self.blocked:
            self.queued.append((f, args))
        else:
            f(*args)

    def unblock(self):
        self.blocked = False
        queued, self.queued = self.queued, []
        for f, args in queued:
            f(*args)


def watched(patience=0.5):
    """A started watch, on a ThreadlessReactor, over snapshots that say when they were
    taken."""
    clock = ThreadlessReactor()
    watch = ReactorWatch(clock, lambda: f"snapshot at {clock.seconds()}", patience=patience,
                         monotonic=clock.seconds)
    watch.start()
    return clock, watch


def test_a_free_reactor_gives_a_fresh_snapshot_and_no_stall():
    """While the reactor answers, every look is a new snapshot, 0 s stalled, 0 s old."""
    clock, watch = watched()
    clock.advance(3)
    look = watch.look()
    assert (look.snapshot, look.stalled, look.stalled_seconds, look.age_seconds) == (
        "snapshot at 3.0", False, 0, 0)


def test_a_blocked_reactor_gives_the_last_snapshot_at_once_with_its_stall():
    """The reactor blocked for longer than the patience (100 s of 60): a look
    answers without waiting (or the test would time out), with the last snapshot
    (the heartbeat's, at 1 s), 100 s stalled and its age."""
    clock, watch = watched(patience=60.0)
    clock.advance(1.0)
    clock.blocked = True
    clock.rightNow += 100.0
    look = watch.look()
    assert (look.snapshot, look.stalled_seconds, look.age_seconds) == ("snapshot at 1.0", 100, 100)
    assert look.stalled


def test_many_looks_at_a_blocked_reactor_leave_one_request_queued_on_it():
    """Ten looks while blocked queue one call; once unblocked, the next look is fresh."""
    clock, watch = watched(patience=0.0)
    clock.blocked = True
    clock.rightNow += 1.0
    for _ in range(10):
        assert watch.look().stalled
    assert len(clock.queued) == 1
    clock.unblock()
    look = watch.look()
    assert (look.snapshot, look.stalled) == ("snapshot at 1.0", False)


def test_a_reactor_that_just_blocked_is_waited_for_at_most_the_patience():
    """Blocked since 0 s (the heartbeat is fresh): the look waits ``patience`` and
    then reports the stall rather than waiting on."""
    clock, watch = watched(patience=0.05)
    clock.blocked = True
    look = watch.look()
    assert look.snapshot == "snapshot at 0.0" and len(clock.queued) == 1
    assert look.stalled and look.stalled_seconds == 0.0


def test_the_token_check_names_what_is_wrong():
    """No header, another scheme, a wrong token each get their reason; the token passes."""
    assert refusal(None, "s3cret").startswith("this endpoint needs the network's token")
    assert refusal("Basic czNjcmV0", "s3cret") == "the Authorization header must be 'Bearer TOKEN'"
    assert refusal("Bearer nope", "s3cret") == "wrong token"
    assert refusal("Bearer s3cret", "s3cret") is None
    assert refusal(None, None) is None


def get(url, token=None):
    """GET ``url`` (blocking); returns (status code, body text)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def health():
    """A health server for a dispatcher (on a Clock) watched on the real reactor."""
    star = Star()
    star.actor("echo-1", ["echo"])
    watch = ReactorWatch(reactor, star.dispatcher.snapshot)
    watch.start()
    servers = []

    def serve(token=None):
        server = HealthServer(watch, "127.0.0.1", 0, token)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield serve
    for server in servers:
        server.stop()
    watch.stop()


@pytest_twisted.ensureDeferred
async def test_the_health_endpoint_serves_status_and_metrics(health):
    """/status is the dispatcher's summary, "ok"; /metrics parses, with the
    dispatcher's and the process's metrics; other paths are 404."""
    base = health()
    code, text = await deferToThread(get, base + "/status")
    status = json.loads(text)
    assert code == 200
    assert (status["status"], status["actors"], status["services"]) == ("ok", 1, ["echo"])
    assert status["reactor_stalled_seconds"] == 0
    code, text = await deferToThread(get, base + "/metrics")
    assert code == 200
    assert sample(text, "actornet_connections") == 1
    assert sample(text, "actornet_reactor_stalled_seconds") == 0
    assert sample(text, "process_open_fds") > 0
    code, text = await deferToThread(get, base + "/nothing")
    assert code == 404 and "/status" in text


@pytest_twisted.ensureDeferred
async def test_the_health_endpoint_with_a_token_answers_401_without_it(health):
    """With a token: 401 and a one-line reason without it or with a wrong one."""
    base = health(token="s3cret")
    for path in ("/status", "/metrics"):
        code, text = await deferToThread(get, base + path)
        assert (code, text.count("\n")) == (401, 1)
        assert "Authorization: Bearer TOKEN" in text
        code, text = await deferToThread(get, base + path, "wrong")
        assert (code, text) == (401, "wrong token\n")
        code, _ = await deferToThread(get, base + path, "s3cret")
        assert code == 200


@pytest_twisted.ensureDeferred
async def test_the_http_endpoint_with_a_token_answers_401_without_it():
    """The twisted.web endpoint's /status and /metrics want the token too."""
    star = Star()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        monitoring_site(star.dispatcher, token="s3cret"))
    base = f"http://127.0.0.1:{port.getHost().port}"
    try:
        for path in ("/status", "/metrics"):
            code, text = await deferToThread(get, base + path)
            assert code == 401 and text.endswith("\n") and text.count("\n") == 1
            code, text = await deferToThread(get, base + path, "nope")
            assert (code, text) == (401, "wrong token\n")
        code, text = await deferToThread(get, base + "/status", "s3cret")
        assert code == 200 and json.loads(text)["status"] == "ok"
        code, text = await deferToThread(get, base + "/metrics", "s3cret")
        assert code == 200 and sample(text, "actornet_in_flight") == 0
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_the_http_endpoint_without_a_token_is_open():
    """By default (no token given) /status and /metrics need no header."""
    star = Star()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        monitoring_site(star.dispatcher))
    base = f"http://127.0.0.1:{port.getHost().port}"
    try:
        assert (await deferToThread(get, base + "/status"))[0] == 200
        code, text = await deferToThread(get, base + "/metrics")
        assert code == 200 and sample(text, "actornet_connections") == 0
    finally:
        await port.stopListening()


BLOCKER_MODULE = '''
import time
from pathlib import Path
from actornet import Actor, handler

class Blocker(Actor):
    """Blocks the reactor it runs on for two seconds, leaving marker files."""

    services = ("block",)

    @handler
    def hold(self, bag):
        Path(bag["started"]).write_text("")
        time.sleep(2)
        Path(bag["ended"]).write_text("")
        return {}
'''


def timed_get(url, ended, results, key):
    """GET ``url``; record (seconds taken, status code, body, whether ``ended`` existed)."""
    started = time.monotonic()
    code, text = get(url)
    results[key] = (time.monotonic() - started, code, text, ended.exists())


def test_health_answers_while_an_actor_blocks_the_reactor_and_http_waits(tmp_path):
    """A real twistd whose in-process actor sleeps 2 s on the reactor: the health
    /status answers during the block, reporting a stall, while the twisted.web
    /status answers only after the block ended."""
    (tmp_path / "blocker.py").write_text(BLOCKER_MODULE)
    connection = tmp_path / "connection.json"
    config = tmp_path / "blocking.toml"
    config.write_text(
        '[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\nhttp = "tcp:0:interface=127.0.0.1"\n'
        'health = "127.0.0.1:0"\n\n[[actor]]\nclass = "blocker:Blocker"\nname = "blocker"\n')
    process = start_twistd(config, tmp_path)
    try:
        splash = process.output.wait_for("health (answers while the reactor is blocked)")
        http, health = re.findall(r"http://127\.0\.0\.1:\d+", splash)
        process.output.wait_for("actor blocker joined")
        assert json.loads(get(health + "/status")[1])["actors"] == 1
        started, ended = tmp_path / "started", tmp_path / "ended"
        call = subprocess.Popen(
            [str(BIN / "actornet"), "call", "block", "hold", "--data",
             json.dumps({"started": str(started), "ended": str(ended)}),
             "--connection-file", str(connection)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not started.exists():
            assert time.monotonic() < deadline, "the blocking handler never started"
            time.sleep(0.01)
        results = {}
        probes = [threading.Thread(target=timed_get, args=(url + "/status", ended, results, key))
                  for key, url in (("http", http), ("health", health))]
        for probe in probes:
            probe.start()
        probes[1].join()
        timed_get(health + "/status", ended, results, "health again")
        timed_get(health + "/metrics", ended, results, "health metrics")
        probes[0].join()
        out, err = call.communicate(timeout=20)
        assert call.returncode == 0, err
    finally:
        stop(process)
    seconds, code, text, ended_before = results["health"]
    status = json.loads(text)
    assert (code, status["status"], ended_before) == (200, "stalled", False)
    assert status["reactor_stalled_seconds"] > 0 and status["actors"] == 1
    again_seconds, code, text, ended_before = results["health again"]
    assert (code, json.loads(text)["status"], ended_before) == (200, "stalled", False)
    metrics_seconds, code, text, ended_before = results["health metrics"]
    assert code == 200 and not ended_before
    assert sample(text, "actornet_reactor_stalled_seconds") > 0
    http_seconds, code, text, ended_before = results["http"]
    assert (code, json.loads(text)["status"], ended_before) == (200, "ok", True)
    print(f"\nwhile an actor blocked the reactor for 2 s: health /status "
          f"{seconds * 1000:.0f} ms (first, waits up to 0.5 s for the reactor), "
          f"{again_seconds * 1000:.0f} ms (next), health /metrics "
          f"{metrics_seconds * 1000:.0f} ms; http /status {http_seconds * 1000:.0f} ms")


def test_a_health_port_in_use_ends_twistd_with_one_line(tmp_path):
    """health on a port another socket holds: twistd exits 1 naming the address."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "busy.toml"
    config.write_text('[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      f'connection_file = false\nhealth = "127.0.0.1:{port}"\n')
    try:
        done = subprocess.run(
            [str(BIN / "twistd"), "-n", "--pidfile=", "actornet", "--config", str(config)],
            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    finally:
        taken.close()
    assert done.returncode == 1
    assert (f"actornet: cannot listen on health 127.0.0.1:{port}: Address already in use\n"
            in done.stdout)
    assert "Traceback" not in done.stdout + done.stderr


def test_http_token_true_guards_both_endpoints_of_a_twistd(tmp_path):
    """``http_token = true``: /status on the http and the health ports answer 401
    without the token and 200 with it."""
    config = tmp_path / "guarded.toml"
    config.write_text('[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      'connection_file = false\ntoken = "t0ken"\nhttp_token = true\n'
                      'http = "tcp:0:interface=127.0.0.1"\nhealth = "127.0.0.1:0"\n')
    process = start_twistd(config, tmp_path)
    try:
        splash = process.output.wait_for("health (answers while the reactor is blocked)")
        for base in re.findall(r"http://127\.0\.0\.1:\d+", splash):
            for path in ("/status", "/metrics"):
                code, text = get(base + path)
                assert code == 401 and "Authorization: Bearer TOKEN" in text
                assert get(base + path, "t0ken")[0] == 200
    finally:
        stop(process)
