"""The ``actornet`` command as a new user meets it: run for real against twistd
networks and against peers that are not dispatchers, on 127.0.0.1."""

import fcntl
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest
from test_console import Terminal, colours
from test_failover import refusing_endpoint
from test_twistd import start_twistd, stop
from twisted.internet.endpoints import clientFromString
from twisted.internet.task import Clock

from actornet import DataBag
from actornet.call_progress import ProgressPrinter
from actornet.cli import parser
from actornet.commands import WORKER_COLUMNS
from actornet.trace import SLOW_MARK

pytestmark = pytest.mark.timeout(60)

BIN = Path(sys.executable).parent
ACTORNET = str(BIN / "actornet")
MiB = 1024 * 1024

ACTORS = '''
from pathlib import Path
from twisted.internet.defer import Deferred
from actornet import Actor, handler


class Echo(Actor):
    services = ("echo",)

    @handler
    def echo(self, bag):
        return dict(bag)


class Picky(Actor):
    services = ("picky",)

    @handler
    def check(self, bag):
        if self.name == "picky-2":
            raise ValueError("picky-2 says no")
        return {"ok": True}


class Stall(Actor):
    services = ("stall",)

    @handler
    def wait(self, bag):
        return Deferred()


class Steps(Actor):
    services = ("steps",)

    @handler
    def count(self, bag):
        for done in range(1, 4):
            self.progress(bag, {"done": done, "total": 3})
        return {"counted": 3}

    @handler
    async def hang(self, bag):
        self.progress(bag, {"stage": "started"})
        try:
            await Deferred()
        finally:
            Path(bag["mark"]).write_text("stopped")
'''


def cli(*args, timeout=30, **kwargs):
    return subprocess.run([ACTORNET, *args], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def timed_cli(*args, **kwargs):
    """Run the CLI; return its result and how long it took (seconds)."""
    started = time.monotonic()
    done = cli(*args, **kwargs)
    return done, time.monotonic() - started


def write_network(folder):
    """A config for a dispatcher with the test actors, the keepalive actor and a file
    share; returns ``(config, connection file)``."""
    (folder / "cliactors.py").write_text(ACTORS)
    (folder / "share").mkdir()
    (folder / "share" / "hello.txt").write_text("hello\n")
    connection = folder / "connection.json"
    config = folder / "net.toml"
    config.write_text(
        '[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\n\n'
        '[[actor]]\nclass = "actornet.actors.keepalive:Keepalive"\nname = "keepalive"\n\n'
        '[[actor]]\nclass = "actornet.actors.fileshare:FileShare"\nname = "files"\n'
        'options = { root = "share" }\n\n'
        '[[actor]]\nclass = "cliactors:Echo"\nname = "echo"\n\n'
        '[[actor]]\nclass = "cliactors:Stall"\nname = "stall"\n\n'
        '[[actor]]\nclass = "cliactors:Steps"\nname = "steps"\n\n'
        '[[actor]]\nclass = "cliactors:Picky"\nname = "picky"\ninstances = 2\n')
    return config, connection


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """One twistd network for the tests that only ask it things; yields the
    options that find it."""
    folder = tmp_path_factory.mktemp("network")
    config, connection = write_network(folder)
    process = start_twistd(config, folder)
    for name in ("keepalive", "files", "echo", "stall", "steps", "picky-1", "picky-2"):
        process.output.wait_for(f"actor {name} joined")
    yield ("--connection-file", str(connection))
    stop(process)


@pytest.fixture
def silent_port():
    """A port that accepts connections (into the kernel's backlog) and never answers."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    yield listening.getsockname()[1]
    listening.close()


@pytest.fixture
def http_port():
    """A peer that answers every connection with an HTTP error, not a frame."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    accepted = []

    def serve():
        while True:
            try:
                peer, _ = listening.accept()
            except OSError:
                return
            accepted.append(peer)
            peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield listening.getsockname()[1]
    listening.close()
    for peer in accepted:
        peer.close()


# -- 1: nothing hangs -------------------------------------------------------------


def test_call_to_a_port_that_never_answers_times_out_waiting_for_ready(silent_port):
    """A peer that accepts and never says READY: `call --timeout 2` exits 1 within
    4 s, naming the phase and the endpoint."""
    endpoint = f"tcp:host=127.0.0.1:port={silent_port}"
    done, took = timed_cli("call", "math", "add", "--timeout", "2", "--connect", endpoint)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"actornet: timeout: no READY from {endpoint} within 2s: "
                           "is that a dispatcher?\n")
    assert 2 <= took < 4


def test_a_connection_that_never_completes_times_out_naming_the_endpoint():
    """A port whose backlog is full drops our SYN: `workers --timeout 1` exits 1
    within 3 s saying it could not connect."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(0)
    port = listening.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        endpoint = f"tcp:host=127.0.0.1:port={port}"
        done, took = timed_cli("workers", "--timeout", "1", "--connect", endpoint)
    finally:
        filler.close()
        listening.close()
    assert done.returncode == 1
    assert done.stderr == f"actornet: timeout: could not connect to {endpoint} within 1s\n"
    assert took < 3


def test_a_peer_that_sends_something_other_than_frames_is_named_at_once(http_port):
    """`workers` against an HTTP port says it is not a dispatcher, exit 1, in well
    under the default timeout."""
    endpoint = f"tcp:host=127.0.0.1:port={http_port}"
    done, took = timed_cli("workers", "--connect", endpoint)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"actornet: malformed_envelope: {endpoint}: the peer sent bytes "
                           "that are not an actornet frame: is that a dispatcher?\n")
    assert took < 5


def test_a_stopped_dispatcher_times_out(tmp_path):
    """A dispatcher frozen with SIGSTOP: `call --timeout 2` exits 1 within 4 s."""
    connection = tmp_path / "connection.json"
    (tmp_path / "hub.toml").write_text(
        '[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\n\n'
        '[[actor]]\nclass = "actornet.actors.keepalive:Keepalive"\nname = "keepalive"\n')
    hub = start_twistd(tmp_path / "hub.toml", tmp_path)
    try:
        hub.output.wait_for("actor keepalive joined")
        endpoint = json.loads(connection.read_text())["endpoint"]
        hub.send_signal(signal.SIGSTOP)
        done, took = timed_cli("call", "keepalive", "show", "--timeout", "2",
                               "--connection-file", str(connection))
    finally:
        hub.send_signal(signal.SIGCONT)
        stop(hub)
    assert done.returncode == 1
    assert done.stderr == (f"actornet: timeout: no READY from {endpoint} within 2s: "
                           "is that a dispatcher?\n")
    assert took < 4


def test_timeout_bounds_the_answer_too(network):
    """An actor that never answers: `call --timeout 1` exits 1 with a timeout within 3 s
    (the client's own, or the dispatcher's when its deadline comes first)."""
    done, took = timed_cli("call", "stall", "wait", "--timeout", "1", *network)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("actornet: timeout: ") and "stall.wait" in line
    assert took < 3


# -- 3: a body over the frame limit -------------------------------------------------


def test_a_body_over_the_frame_limit_is_one_too_large_line(network, tmp_path):
    """`call --data @big.json` over 16 MiB exits 1 with one too_large line naming
    the size and the limit, and the network keeps answering."""
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * (17 * MiB)}))
    done = cli("call", "echo", "echo", "--data", f"@{big}", "--timeout", "20", *network)
    assert (done.returncode, done.stdout) == (1, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith("actornet: too_large: ")
    numbers = [int(n) for n in re.findall(r"\d+", line)]
    assert 16 * MiB - 4096 in numbers, "the limit less the dispatcher's headroom"
    assert any(n > 16 * MiB for n in numbers)
    after = cli("call", "echo", "echo", "--data", '{"still": "here"}', *network)
    assert json.loads(after.stdout) == {"still": "here"}


# -- 8: --data, --timeout, --target all, --route -------------------------------------


def test_data_nested_too_deep_is_one_line():
    """JSON nested deeper than Python's json module can parse is a usage error in
    one line, not a RecursionError traceback."""
    done = cli("call", "echo", "echo", "--data", "[" * 100_000)
    assert (done.returncode, done.stderr) == (2, "actornet: --data: nesting too deep\n")


def test_data_from_a_file_and_from_stdin(network, tmp_path):
    """`--data @FILE` reads the request from FILE and `--data -` from stdin."""
    request = tmp_path / "request.json"
    request.write_text('{"from": "file"}')
    from_file = cli("call", "echo", "echo", "--data", f"@{request}", *network)
    assert (from_file.returncode, json.loads(from_file.stdout)) == (0, {"from": "file"})
    from_stdin = cli("call", "echo", "echo", "--data", "-", *network, input='{"from": "stdin"}')
    assert (from_stdin.returncode, json.loads(from_stdin.stdout)) == (0, {"from": "stdin"})


def test_data_from_a_missing_file_is_one_line_naming_it(tmp_path):
    """`--data @FILE` with no such file is one usage line naming the file."""
    missing = tmp_path / "nope.json"
    done = cli("call", "echo", "echo", "--data", f"@{missing}")
    assert (done.returncode, done.stderr) == (
        2, f"actornet: --data: cannot read {missing}: No such file or directory\n")


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_must_be_a_positive_number(seconds):
    """`--timeout` that is not a positive number is an argparse usage error."""
    done = cli("call", "echo", "echo", "--timeout", seconds)
    assert done.returncode == 2
    assert (f"argument --timeout: expected a positive number of seconds, got {seconds!r}"
            in done.stderr)


def test_target_all_exits_3_when_some_actors_failed(network):
    """`--target all` prints the combined answer and exits 3 when an actor's answer
    in it failed; `call --help` says so."""
    done = cli("call", "picky", "check", "--target", "all", *network)
    assert done.returncode == 3, done.stderr
    answer = json.loads(done.stdout)
    assert answer["picky-1"] == {"status": 200, "result": {"ok": True}}
    assert answer["picky-2"]["status"] == 500
    assert answer["picky-2"]["error"]["message"] == "picky-2 says no"
    assert cli("call", "picky", "check", "--target", "picky-1", *network).returncode == 0
    assert "the exit status is 3 when any of them failed" in " ".join(
        cli("call", "--help").stdout.split())


def test_route_goes_to_stderr_as_aligned_columns(network):
    """`--route` leaves stdout pure JSON and prints the route on stderr with one
    aligned column per field."""
    done = cli("call", "echo", "echo", "--data", '{"a": 1}', "--route", *network)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": 1}
    title, header, *stamps = done.stderr.splitlines()
    assert title == "route (4 stamps):"
    assert header.split() == ["HOP", "NAME", "HOST:PID", "CONN", "SEQ", "+MS", "HELD", "MS"]
    assert len({len(line) for line in [header, *stamps]}) == 1
    assert [line.split()[1] for line in stamps][1:] == ["dispatcher", "echo", "dispatcher"]
    assert [int(line.split()[0]) for line in stamps] == [1, 2, 3, 4]


def test_trace_draws_the_route_on_stderr_one_row_per_hop(network, tmp_path):
    """`--trace` leaves stdout pure JSON and draws client, dispatcher, echo,
    dispatcher on stderr, dispatcher hops named by KIND, bars in one column;
    `--trace-json` and `--svg` give the same hops as numbers and a picture."""
    picture = tmp_path / "route.svg"
    done = cli("call", "echo", "echo", "--data", '{"a": 1}', "--trace", "--svg", str(picture),
               *network)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": 1}
    title, header, *rows = done.stderr.splitlines()
    assert re.fullmatch(r"trace of client-\S+:\d+ \(4 hops, \d+\.\d{3} ms\):", title), title
    assert header.split()[:4] == ["HOP", "NAME", "HOST:PID", "KIND"]
    cells = [row.split() for row in rows]
    assert [row[0] for row in cells] == ["1", "2", "3", "4"]
    assert cells[0][1].startswith("client-")
    assert [row[1] for row in cells[1:]] == ["dispatcher", "echo", "dispatcher"]
    assert [row[3] for row in cells] == ["actor", "dispatcher", "actor", "dispatcher"]
    assert len({line.index("|") for line in [header, *rows]}) == 1
    assert all("#" in row[row.index("|"):] for row in rows)
    assert "\x1b" not in done.stderr
    svg = ET.fromstring(picture.read_text())
    labels = [text.text for text in svg.iter("{http://www.w3.org/2000/svg}text")
              if text.get("class") == "label"]
    assert [label.split()[1] for label in labels][1:] == ["dispatcher", "echo", "dispatcher"]
    done = cli("call", "echo", "echo", "--trace-json", *network)
    assert done.returncode == 0, done.stderr
    [shown] = json.loads(done.stderr)
    assert [hop["kind"] for hop in shown["hops"]] == ["actor", "dispatcher", "actor", "dispatcher"]
    assert all(hop["held_ms"] >= 0 for hop in shown["hops"])
    assert shown["hops"][0]["offset_ms"] == 0


def test_trace_without_a_journal_is_one_unknown_service_line(network):
    """`actornet trace` against a dispatcher that keeps no journal says so."""
    done = cli("trace", "--last", "2", *network)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("actornet: unknown_service: the dispatcher keeps no journal")
    assert len(done.stderr.splitlines()) == 1


BILLING = '''
from actornet import Actor, handler


class Billing(Actor):
    services = ("billing",)

    @handler
    def charge(self, bag):
        return {"charged": bag["amount"]}
'''


def test_trace_draws_the_bags_the_journal_answers_by_key_and_last(tmp_path):
    """`trace NAME:SEQ` asks journal.get for that key and `trace --last N
    --service S` journal.last; each bag is drawn under its key."""
    (tmp_path / "billing.py").write_text(BILLING)
    connection = tmp_path / "connection.json"
    config = tmp_path / "net.toml"
    config.write_text('[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      f'connection_file = "{connection}"\njournal = "bags.db"\n\n'
                      '[[actor]]\nclass = "billing:Billing"\nname = "billing-1"\n')
    process = start_twistd(config, tmp_path)
    try:
        process.output.wait_for("actor billing-1 joined")
        found = ("--connection-file", str(connection))
        assert cli("call", "billing", "charge", "--data", '{"amount": 5}', *found).returncode == 0
        done = cli("trace", "--last", "2", "--service", "billing", "--json", *found)
        assert done.returncode == 0, done.stderr
        answer, request = json.loads(done.stdout)
        assert [hop["name"] for hop in answer["hops"]][-2:] == ["billing-1", "dispatcher"]
        assert [hop["name"] for hop in request["hops"]][-1] == "dispatcher"
        kept = cli("call", "journal", "last", "--data", '{"n": 1, "service": "billing"}',
                   *found)
        server, seq = json.loads(kept.stdout)["bags"][0]["key"]
        done = cli("trace", f"{server}:{seq}", *found)
        assert done.returncode == 0, done.stderr
        title, header, *rows = done.stdout.splitlines()
        assert title.startswith("trace of ") and "(4 hops, " in title
        assert "billing-1" in done.stdout
    finally:
        stop(process)


def test_trace_takes_a_key_or_last_but_not_both():
    """A key is NAME:SEQ; --last (and --service) with a KEY are usage errors."""
    assert parser().parse_args(["trace", "client-1:2:3"]).key == ("client-1:2", 3)
    for wrong in (["trace", "client-1"], ["trace", "a:1", "--last", "2"],
                  ["trace", "--last", "0"], ["trace", "a:1", "--service", "math"]):
        assert cli(*wrong).returncode == 2


# -- 11: workers --help, fetch's seconds -------------------------------------------


def test_progress_prints_each_report_on_stderr_before_the_answer(network):
    """`call --progress` prints one line per report on stderr (not a terminal: no
    bar), and the answer alone on stdout."""
    done = cli("call", "steps", "count", "--progress", *network)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"counted": 3}
    assert done.stderr.splitlines() == [
        f'progress (steps): {{"done": {n}, "total": 3}}' for n in (1, 2, 3)]


def test_interrupt_cancels_the_call_and_its_handler(network, tmp_path):
    """SIGINT during a call cancels its request: one line, exit 130, and the handler
    at the actor is stopped (its ``finally`` runs)."""
    mark = tmp_path / "mark"
    call = subprocess.Popen([ACTORNET, "call", "steps", "hang", "--progress", "--data",
                             json.dumps({"mark": str(mark)}), *network],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert call.stderr.readline().startswith("progress (steps):")
        call.send_signal(signal.SIGINT)
        out, err = call.communicate(timeout=10)
    finally:
        call.kill()
    assert (call.returncode, out, err) == (130, "", "actornet: cancelled\n")
    deadline = time.monotonic() + 5
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.read_text() == "stopped"


def test_workers_help_explains_every_column():
    """`workers --help` has a line per column saying what it is, in seconds or counts."""
    shown = cli("workers", "--help").stdout.splitlines()
    explained = {}
    for _, title in WORKER_COLUMNS:
        line = next((line for line in shown if line.startswith(f"  {title} ")), None)
        assert line is not None, f"{title} is not explained"
        explained[title] = line[len(title) + 2:].strip()
    assert all(explained.values())
    for title in ("ALIVE-FOR", "HOLDTIME"):
        assert "seconds" in explained[title]
    for title in ("KA-TX", "KA-RX", "IN-FLIGHT"):
        assert "count" in explained[title]


def test_fetch_prints_seconds_rounded_to_milliseconds(network, tmp_path):
    """`fetch` prints how long it took with at most three decimals."""
    done = cli("fetch", "hello.txt", "--dest", str(tmp_path), *network)
    assert done.returncode == 0, done.stderr
    seconds = json.loads(done.stdout)["seconds"]
    assert seconds == round(seconds, 3)
    assert re.search(r'"seconds": \d+(\.\d{1,3})?[,}]', done.stdout), done.stdout


# -- 12: help and version --------------------------------------------------------


def test_help_is_plain_text_with_an_example_per_command_and_the_version_option():
    """`actornet --help` lists --version and an example of every command, with no
    reStructuredText markup; each command's help has its own example."""
    shown = cli("--help")
    assert shown.returncode == 0
    assert "``" not in shown.stdout
    assert "--version" in shown.stdout
    examples = shown.stdout.split("examples:")[1]
    for command in ("call", "trace", "workers", "status", "stop", "fetch"):
        assert f"  actornet {command}" in examples
        own = cli(command, "--help").stdout
        assert "``" not in own
        assert re.search(rf"^examples?:\n(  .*\n)*  actornet {command}\b", own, re.M), own


def test_version_prints_the_installed_version():
    """`actornet --version` prints `actornet X.Y.Z`."""
    done = cli("--version")
    assert (done.returncode, done.stdout) == (0, f"actornet {version('actornet')}\n")


def test_every_option_of_every_command_has_help():
    """Walking the parser finds no argument without help text."""
    parsers, waiting = [], [("actornet", parser())]
    while waiting:
        name, each = waiting.pop()
        parsers.append((name, each))
        for action in each._actions:
            if action.choices and isinstance(action.choices, dict):
                waiting += [(f"{name} {sub_name}", sub)
                            for sub_name, sub in action.choices.items()]
    assert {"actornet call", "actornet workers", "actornet certs issue"} <= {
        name for name, _ in parsers}
    missing = [f"{name} {action.dest}" for name, sub in parsers for action in sub._actions
               if not (action.help or "").strip()]
    assert missing == []


# -- 13: --wait ------------------------------------------------------------------


def test_wait_lets_the_cli_start_before_the_network(tmp_path):
    """A `call --wait 10` started before twistd answers once the network is up."""
    config, connection = write_network(tmp_path)
    call = subprocess.Popen([ACTORNET, "call", "echo", "echo", "--data", '{"name": "ada"}',
                             "--wait", "10", "--connection-file", str(connection)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    network = start_twistd(config, tmp_path)
    try:
        out, err = call.communicate(timeout=30)
        network.output.wait_for("actor echo joined")
    finally:
        call.kill()
        stop(network)
    assert (call.returncode, json.loads(out)) == (0, {"name": "ada"}), err


def test_wait_gives_up_naming_the_connection_file(tmp_path):
    """`--wait 1` with no dispatcher ever starting exits 1 within 3 s naming the file."""
    connection = tmp_path / "connection.json"
    done, took = timed_cli("status", "--wait", "1", "--connection-file", str(connection))
    assert done.returncode == 1
    assert done.stderr == (f"actornet: timeout: no dispatcher came up within 1s (--wait): "
                           f"no connection file at {connection}: is a dispatcher running? "
                           "(or pass --connect)\n")
    assert 1 <= took < 3


# -- 14: several dispatchers -----------------------------------------------------


def live_endpoint(network):
    return json.loads(Path(network[1]).read_text())["endpoint"]


def test_connect_tries_comma_separated_endpoints_in_order(network):
    """`--connect DEAD,LIVE` passes over the refused endpoint and answers through the
    live one; $ACTORNET_CONNECT takes the same list."""
    endpoints = f"{refusing_endpoint()},{live_endpoint(network)}"
    done = cli("call", "echo", "echo", "--data", '{"n": 1}', "--connect", endpoints)
    assert (done.returncode, json.loads(done.stdout)) == (0, {"n": 1}), done.stderr
    done = cli("call", "echo", "echo", "--data", '{"n": 2}',
               env=dict(os.environ, ACTORNET_CONNECT=endpoints))
    assert (done.returncode, json.loads(done.stdout)) == (0, {"n": 2}), done.stderr


def test_when_no_endpoint_answers_each_is_named_on_one_line():
    """Two refused endpoints: exit 1 with one line naming both and why."""
    first, second = refusing_endpoint(), refusing_endpoint()
    done = cli("status", "--connect", f"{first},{second}")
    assert (done.returncode, done.stdout) == (1, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"actornet: connection failed: {first}: Connection was refused")
    assert f"; {second}: Connection was refused" in line


def test_a_comma_inside_an_endpoint_is_escaped_as_twisted_escapes_colons():
    """`\\,` stays in its endpoint, where Twisted's parser reads it as a comma."""
    args = parser().parse_args(["status", "--connect", r"unix:path=/tmp/a\,b,tcp:host=h:port=1"])
    assert args.connect == (r"unix:path=/tmp/a\,b", "tcp:host=h:port=1")
    assert clientFromString(None, args.connect[0])._path == "/tmp/a,b"


def test_progress_counting_done_of_total_draws_a_bar_on_a_terminal(monkeypatch):
    """On a terminal, reports with done and total redraw one rich bar of counts
    (no MB), and a report without them is printed above it; on a pipe each
    report is a line of its own."""
    monkeypatch.setenv("COLUMNS", "100")
    screen = Terminal()
    printer = ProgressPrinter("steps.count", Clock(), screen)
    for done in (1, 2, 3):
        printer(DataBag.received({"done": done, "total": 3}, [], "steps"))
    printer(DataBag.received({"stage": "checked"}, [], "steps"))
    printer.finish()
    drawn = SGR_OR_CURSOR.sub("", screen.getvalue())
    redrawn = drawn.split("\r")
    assert len(redrawn) > 3 and "MB" not in drawn
    assert redrawn[-1].startswith("steps.count ━") and redrawn[-1].endswith("100% 3/3\n")
    assert 'progress (steps): {"stage": "checked"}\n' in drawn
    piped = io.StringIO()

    ProgressPrinter("steps.hang", Clock(), piped)(
        DataBag.received({"stage": "started"}, [], "steps"))
    assert piped.getvalue() == 'progress (steps): {"stage": "started"}\n'


def in_terminal(*args, **env):
    """Run the CLI with stdout and stderr on a pseudo-terminal 160 columns wide;
    return its exit status and what the terminal showed (lines end in \\n)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    clean = {name: value for name, value in os.environ.items()
             if name not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    process = subprocess.Popen([ACTORNET, *args], stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=follower, env={**clean, "TERM": "xterm-256color", **env})
    os.close(follower)
    shown = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(leader)
    return process.wait(timeout=30), b"".join(shown).decode().replace("\r\n", "\n")


def test_on_a_terminal_workers_and_status_are_rich_tables(network):
    """Under a pseudo-terminal `workers` draws a box table with a row per actor
    and `status` one of FIELD and VALUE; `--json` still prints JSON there."""
    status, shown = in_terminal("workers", *network)
    assert status == 0, shown
    lines = SGR_OR_CURSOR.sub("", shown).splitlines()
    assert lines[0].startswith("┏") and lines[2].startswith("┡") and lines[-1].startswith("└")
    assert [cell.strip() for cell in lines[1].split("┃")[1:-1]] == [
        title for _, title in WORKER_COLUMNS]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[3:-1]]
    assert {row[0] for row in rows} == {"keepalive", "files", "echo", "stall", "steps",
                                        "picky-1", "picky-2"}
    assert {row[3] for row in rows} == {"alive"}
    status, shown = in_terminal("status", *network)
    assert status == 0, shown
    fields = {line.split("│")[1].strip() for line in
              SGR_OR_CURSOR.sub("", shown).splitlines() if line.startswith("│")}
    assert {"name", "uptime", "keepalive.interval", "token_required"} <= fields
    status, shown = in_terminal("workers", "--json", *network)
    assert status == 0 and len(json.loads(shown)) == 7


def test_on_a_terminal_slow_hops_are_red_unless_no_color_is_set(network):
    """`call --trace --slow-ms 0` marks every hop slow: red rows on a terminal,
    no colour codes under $NO_COLOR, the table and its marks the same."""
    args = ("call", "echo", "echo", "--trace", "--slow-ms", "0", *network)
    status, coloured = in_terminal(*args)
    assert status == 0, coloured
    assert "\x1b[1;31m" in coloured
    status, uncoloured = in_terminal(*args, NO_COLOR="1")
    assert status == 0, uncoloured
    assert not colours(uncoloured)
    table = SGR_OR_CURSOR.sub("", uncoloured)
    assert "┏" in table and table.count(SLOW_MARK) == 4


def test_on_a_terminal_fetch_and_call_progress_draw_rich_bars(network, tmp_path):
    """`fetch` draws its bar to 100% (bytes) before the JSON answer, and
    `call --progress` one counting to 3/3."""
    status, shown = in_terminal("fetch", "hello.txt", "--dest", str(tmp_path), *network)
    assert status == 0, shown
    *bar, answer = SGR_OR_CURSOR.sub("", shown).rstrip("\n").split("\n")
    last = "\n".join(bar).split("\r")[-1]
    assert last.startswith("hello.txt ━") and "100% 6/6 bytes" in last
    assert json.loads(answer)["bytes"] == 6
    status, shown = in_terminal("call", "steps", "count", "--progress", *network)
    assert status == 0, shown
    *bar, answer = SGR_OR_CURSOR.sub("", shown).rstrip("\n").split("\n")
    last = "\n".join(bar).split("\r")[-1]
    assert last.startswith("steps.count ━") and last.endswith("100% 3/3")
    assert json.loads(answer) == {"counted": 3}


SGR_OR_CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

