"""systemd's notify protocol: on a Clock for the schedule, and under a real
``twistd`` with this test playing systemd on a unix datagram socket."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from test_twistd import BIN, Output
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from actornet.config import ConfigError
from actornet.registration import NetworkInfo
from actornet.systemd import NotifySocket, SystemdNotifier, from_environment, notify_address

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Sent:
    """Stands in for the notify socket: keeps each message as its list of lines."""

    def __init__(self):
        self.messages = []
        self.working = True

    def send(self, *lines):
        if self.working:
            self.messages.append(list(lines))
        return self.working

    def lines(self, prefix):
        return [line for message in self.messages for line in message
                if line.startswith(prefix)]


class Counts:
    """A snapshot whose summary the test changes."""

    def __init__(self):
        self.numbers = {"actors": 0, "connections": 0, "in_flight": 0}

    def __call__(self):
        return self

    def summary(self):
        return dict(self.numbers)


def info(snapshot):
    return NetworkInfo(name="dispatcher", pid=4242, host="here", listen=(), http=None,
                       actors=(), version="0", snapshot=snapshot)


# -- the schedule, on a Clock -------------------------------------------------------


def test_ready_carries_the_main_pid_and_the_counts_and_the_watchdog_pings_every_interval():
    """READY=1, MAINPID and STATUS go in one message; WATCHDOG=1 follows at once and
    then every interval, until deregister says STOPPING=1 and the pings stop."""
    sent, clock, counts = Sent(), Clock(), Counts()
    counts.numbers["connections"] = 1
    notifier = SystemdNotifier(sent, clock, watchdog_interval=0.5)
    notifier.register(info(counts))
    assert sent.messages == [["READY=1", "MAINPID=4242",
                              "STATUS=0 actors, 1 connections, 0 in flight"],
                             ["WATCHDOG=1"]]
    clock.advance(0.4)
    assert len(sent.lines("WATCHDOG=1")) == 1
    clock.advance(0.1)
    assert len(sent.lines("WATCHDOG=1")) == 2
    clock.pump([0.5] * 4)
    assert len(sent.lines("WATCHDOG=1")) == 6
    notifier.deregister(info(counts))
    assert sent.messages[-1][0] == "STOPPING=1"
    clock.pump([0.5] * 10)
    assert len(sent.lines("WATCHDOG=1")) == 6
    assert not clock.getDelayedCalls()


def test_no_watchdog_pings_without_a_watchdog_interval():
    sent, clock = Sent(), Clock()
    SystemdNotifier(sent, clock).register(info(Counts()))
    clock.pump([1] * 10)
    assert sent.lines("WATCHDOG") == []


def test_status_is_sent_when_the_counts_change_and_only_then():
    """The counts are looked at every status interval; an unchanged STATUS is not resent."""
    sent, clock, counts = Sent(), Clock(), Counts()
    SystemdNotifier(sent, clock, status_interval=2).register(info(counts))
    clock.pump([2] * 3)
    assert sent.lines("STATUS=") == ["STATUS=0 actors, 0 connections, 0 in flight"]
    counts.numbers.update(actors=3, connections=5)
    clock.advance(1.9)
    assert len(sent.lines("STATUS=")) == 1
    clock.advance(0.1)
    assert sent.lines("STATUS=")[-1] == "STATUS=3 actors, 5 connections, 0 in flight"
    clock.pump([2] * 3)
    assert len(sent.lines("STATUS=")) == 2
    counts.numbers["in_flight"] = 7
    clock.advance(2)
    assert sent.lines("STATUS=")[-1] == "STATUS=3 actors, 5 connections, 7 in flight"


def test_a_status_that_could_not_be_sent_is_sent_again_next_time():
    sent, clock, counts = Sent(), Clock(), Counts()
    SystemdNotifier(sent, clock, status_interval=1).register(info(counts))
    counts.numbers["actors"] = 1
    sent.working = False
    clock.advance(1)
    sent.working = True
    clock.advance(1)
    assert sent.lines("STATUS=")[-1] == "STATUS=1 actors, 0 connections, 0 in flight"


# -- the socket and the environment -------------------------------------------------


def test_an_abstract_notify_socket_receives_the_message():
    """NOTIFY_SOCKET=@name reaches the abstract socket of that name."""
    name = f"actornet-test-{uuid.uuid4().hex}"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind("\0" + name)
    systemd.settimeout(5)
    notify = NotifySocket(notify_address("@" + name))
    try:
        assert notify.send("READY=1", "MAINPID=1")
        assert systemd.recv(4096) == b"READY=1\nMAINPID=1"
    finally:
        notify.close()
        systemd.close()


def test_a_notify_socket_nobody_listens_on_is_logged_once_not_raised(tmp_path):
    """Sends to a gone socket return False; only the first of the run is logged."""
    logged = []
    globalLogPublisher.addObserver(logged.append)
    notify = NotifySocket(str(tmp_path / "gone"))
    try:
        assert [notify.send("WATCHDOG=1") for _ in range(3)] == [False, False, False]
    finally:
        notify.close()
        globalLogPublisher.removeObserver(logged.append)
    assert [formatEvent(event) for event in logged
            if "not sent" in formatEvent(event)] == [
        "actornet: systemd notify message 'WATCHDOG=1' not sent: No such file or directory"]


def test_the_environment_is_read_and_cleared_for_the_processes_we_start(tmp_path):
    """NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are taken out of the environment;
    the watchdog runs at half WATCHDOG_USEC, and only when WATCHDOG_PID is ours."""
    environ = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "3000000",
               "WATCHDOG_PID": "77", "PATH": "/bin"}
    (hook,) = from_environment(environ, Clock(), pid=77)
    assert environ == {"PATH": "/bin"}
    assert (hook.name, hook.hook.watchdog_interval) == ("systemd", 1.5)
    hook.hook.notify.close()
    (other,) = from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000",
                                 "WATCHDOG_PID": "78"}, Clock(), pid=77)
    assert other.hook.watchdog_interval is None
    other.hook.notify.close()
    assert from_environment({}, Clock()) == ()


@pytest.mark.parametrize("environ, problem", [
    ({"NOTIFY_SOCKET": "vsock:2:1234"}, "NOTIFY_SOCKET='vsock:2:1234' is not a unix socket"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "soon"}, "WATCHDOG_USEC='soon' is not a "
                                                       "positive number"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "0"}, "WATCHDOG_USEC='0' is not a positive"),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "10", "WATCHDOG_PID": "me"},
     "WATCHDOG_PID='me' is not a process id"),
])
def test_an_unusable_environment_is_named(environ, problem):
    with pytest.raises(ConfigError, match=problem):
        from_environment(environ, Clock())


# -- a real twistd, with this test as systemd ---------------------------------------


class PretendSystemd:
    """A unix datagram socket in ``folder`` that collects notify messages."""

    def __init__(self, folder):
        self.path = folder / "notify"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(self.path))
        self.messages = []

    def wait_for(self, wanted, timeout=20):
        """Receive until a message has a line for which ``wanted(line)`` is true; return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((line for message in self.messages for line in message
                          if wanted(line)), None)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such notify line in {self.messages}")
            self.socket.settimeout(left)
            try:
                self.messages.append(self.socket.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue

    def lines(self, prefix):
        return [line for message in self.messages for line in message
                if line.startswith(prefix)]

    def receive_all_now(self):
        self.socket.setblocking(False)
        while True:
            try:
                self.messages.append(self.socket.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return

    def close(self):
        self.socket.close()


def start_under_systemd(config, folder, systemd, **environ):
    env = dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=str(systemd.path), **environ)
    process = subprocess.Popen(
        [str(BIN / "twistd"), "-n", "--pidfile=", "actornet", "--config", str(config)],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    process.output = Output(process.stdout)
    return process


@pytest.fixture
def systemd(tmp_path):
    pretend = PretendSystemd(tmp_path)
    yield pretend
    pretend.close()


@pytest.mark.timeout(60)
def test_twistd_tells_systemd_ready_status_watchdog_and_stopping(tmp_path, systemd):
    """Under a Type=notify unit: READY=1 once the port accepts connections, STATUS with
    the actor count, WATCHDOG=1 pings, and STOPPING=1 on SIGTERM."""
    shutil.copy(EXAMPLES / "mathserver.py", tmp_path)
    connection = tmp_path / "connection.json"
    config = tmp_path / "net.toml"
    config.write_text(f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      f'connection_file = "{connection}"\n\n'
                      '[[actor]]\nclass = "mathserver:MathServer"\nname = "math"\n'
                      'instances = 2\n')
    process = start_under_systemd(config, tmp_path, systemd, WATCHDOG_USEC="300000")
    try:
        systemd.wait_for(lambda line: line == "READY=1")
        port = int(json.loads(connection.read_text())["endpoint"].rsplit("=", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        ready = next(message for message in systemd.messages if "READY=1" in message)
        assert f"MAINPID={process.pid}" in ready
        systemd.wait_for(lambda line: line == "STATUS=2 actors, 2 connections, 0 in flight")
        systemd.wait_for(lambda line: len(systemd.lines("WATCHDOG=1")) >= 3)
        assert systemd.lines("STOPPING=1") == []
        process.send_signal(signal.SIGTERM)
        systemd.wait_for(lambda line: line == "STOPPING=1")
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, -signal.SIGTERM), "".join(process.output.lines)
    process.output.wait_for("Server Shut Down.")


@pytest.mark.timeout(60)
def test_a_required_hook_that_fails_stops_twistd_before_systemd_hears_ready(tmp_path,
                                                                              systemd):
    """A required registration that fails ends twistd with status 1 and one line naming
    it; systemd, told last, never hears READY=1, so the unit's start fails."""
    shutil.copy(Path(__file__).parent / "registration_probe.py", tmp_path)
    record = tmp_path / "record.jsonl"
    config = tmp_path / "net.toml"
    config.write_text('[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      'connection_file = false\n\n'
                      '[[registration]]\nclass = "registration_probe:Probe"\nname = "consul"\n'
                      f'options = {{ record = "{record}", refuse = "consul is down" }}\n'
                      'required = true\n')
    process = start_under_systemd(config, tmp_path, systemd)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(process.output.lines)
    assert process.returncode == 1, output
    assert ("actornet: stopping: the required registration 'consul' failed "
            "(RuntimeError: consul is down)") in output
    assert "Traceback" not in output
    systemd.receive_all_now()
    assert systemd.lines("READY=1") == []
    assert [json.loads(line)["event"] for line in record.read_text().splitlines()] == [
        "register", "deregister"]


def test_a_config_without_a_dispatcher_says_why_systemd_hears_nothing(tmp_path, systemd):
    """Joining a dispatcher elsewhere under Type=notify logs that it will not say READY=1."""
    config = tmp_path / "join.toml"
    config.write_text('[join]\nconnect = "tcp:host=127.0.0.1:port=1"\n\n[[actor]]\n'
                      'class = "actornet.actors.keepalive:Keepalive"\n')
    process = start_under_systemd(config, tmp_path, systemd)
    try:
        process.output.wait_for("NOTIFY_SOCKET is set, but only a config with a [dispatcher] "
                                "speaks systemd's notify protocol: run this one as Type=simple")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    systemd.receive_all_now()
    assert systemd.messages == []
