"""The launch path: real ``twistd actornet`` processes driven by the ``actornet`` CLI."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families

from actornet import ActorLost, connect

pytestmark = pytest.mark.timeout(60)

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

STALL_MODULE = '''
from twisted.internet.defer import Deferred
from actornet import Actor, handler

class Stall(Actor):
    services = ("stall",)

    @handler
    def wait(self, bag):
        print("holding a request", flush=True)
        return Deferred()
'''


class Output:
    """Drains a process's output on a thread (so its pipe never fills) and lets a
    test wait for a line."""

    def __init__(self, stream):
        self.lines = []
        self.ended = False
        self.changed = threading.Condition()
        threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream):
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_for(self, needle, timeout=20):
        """Block until a line holds ``needle``; return it."""
        def found():
            return next((line for line in self.lines if needle in line), None)
        with self.changed:
            if not self.changed.wait_for(lambda: found() or self.ended, timeout) or not found():
                raise AssertionError(f"no line with {needle!r}:\n{''.join(self.lines)}")
            return found()


def start_twistd(config, cwd, twistd_options=()):
    """Start ``twistd -n actornet --config``; its output is in ``process.output``."""
    process = subprocess.Popen(
        [str(BIN / "twistd"), "-n", "--pidfile=", *twistd_options, "actornet", "--config",
         str(config)],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    process.output = Output(process.stdout)
    return process


def cli(*args, **kwargs):
    return subprocess.run([str(BIN / "actornet"), *args], capture_output=True, text=True,
                          timeout=30, **kwargs)


def stop(process):
    """SIGTERM the process and wait; twistd shuts down cleanly, then re-raises the signal."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


FIXED_PORTS = {'listen = ["tcp:5570:interface=127.0.0.1"]':
               'listen = ["tcp:0:interface=127.0.0.1"]',
               'http = "tcp:5571:interface=127.0.0.1"': 'http = "tcp:0:interface=127.0.0.1"',
               'listen = "tcp:5572:interface=127.0.0.1"': 'listen = "tcp:0:interface=127.0.0.1"',
               'health = "127.0.0.1:5574"': 'health = "127.0.0.1:0"'}
"""The example config's fixed ports (dispatcher, http, gateway, health) and their free stand-ins."""


def example_on_free_ports(tmp_path, dispatcher_keys=""):
    """examples/ copied into ``tmp_path``, its cluster.toml listening on free ports
    with ``dispatcher_keys`` (TOML lines) added to ``[dispatcher]``; its path."""
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "cluster.toml"
    text = config.read_text()
    for fixed, free in FIXED_PORTS.items():
        assert fixed in text, f"examples/cluster.toml no longer has {fixed}"
        text = text.replace(fixed, free)
    config.write_text(text.replace("[dispatcher]\n", f"[dispatcher]\n{dispatcher_keys}\n", 1))
    return config


@pytest.fixture
def network(tmp_path):
    """The example network (examples/ copied) on free ports, as a twistd subprocess."""
    connection = tmp_path / "connection.json"
    config = example_on_free_ports(
        tmp_path, f'connection_file = "{connection}"\ntoken = "t0ken"')
    process = start_twistd(config, tmp_path)
    splash = process.output.wait_for("metrics and status on http://")
    process.monitoring = re.search(r"metrics and status on (http://[\d.:]+)/", splash)[1]
    process.health = re.search(r"health .* on (http://[\d.:]+)/status", splash)[1]
    process.output.wait_for("actor provider joined")
    yield process, connection
    stop(process)
    assert process.returncode in (0, -signal.SIGTERM)
    process.output.wait_for("Server Shut Down.")
    assert not connection.exists(), "the connection file outlived a clean shutdown"


def test_twistd_network_answers_the_cli(network):
    """`actornet call math add` against a twistd network prints 99 and exits 0."""
    process, connection = network
    info = json.loads(connection.read_text())
    assert info["token"] == "t0ken"
    assert oct(connection.stat().st_mode & 0o777) == "0o600"
    done = cli("call", "math", "add", "--data", '{"a": 50, "b": 49}',
               "--connection-file", str(connection))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": 99}


def test_pipeline_call_shows_a_multi_hop_route(network):
    """The billing pipeline's answer carries at least 4 stamps through 3 actors."""
    process, connection = network
    done = cli("call", "billing", "claim", "--data",
               '{"patient": "alice", "procedure": "x-ray"}', "--route",
               "--connection-file", str(connection))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "Dr. Curie"
    title, header, *stamps = done.stderr.splitlines()
    assert title == "route (8 stamps):"
    names = [line.split()[1] for line in stamps]
    assert names[2::2] == ["intake", "insurance", "provider"]


def test_cli_errors_name_the_status_and_exit_non_zero(network):
    """An unknown service and a wrong token each give one stderr line and exit 1."""
    process, connection = network
    unknown = cli("call", "nosuch", "m", "--connection-file", str(connection))
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [
        "actornet: unknown_service: no actor has ever served 'nosuch'"]
    endpoint = json.loads(connection.read_text())["endpoint"]
    refused = cli("call", "math", "add", "--connect", endpoint, "--token", "wrong")
    assert refused.returncode == 1
    assert "unauthorized" in refused.stderr


def test_killing_a_remote_worker_answers_actor_lost_within_a_second(network, tmp_path):
    """kill -9 of the actor process holding a request fails the CLI with actor_lost in < 1 s."""
    process, connection = network
    info = json.loads(connection.read_text())
    (tmp_path / "stall.py").write_text(STALL_MODULE)
    join = tmp_path / "join.toml"
    join.write_text(f'[join]\nconnect = "{info["endpoint"]}"\ntoken = "t0ken"\n\n'
                    '[[actor]]\nclass = "stall:Stall"\nname = "stall-1"\n')
    worker = start_twistd(join, tmp_path)
    try:
        process.output.wait_for("actor stall-1 joined")
        call = subprocess.Popen(
            [str(BIN / "actornet"), "call", "stall", "wait", "--timeout", "30",
             "--connection-file", str(connection)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        worker.output.wait_for("holding a request")
        killed_at = time.monotonic()
        worker.kill()
        out, err = call.communicate(timeout=10)
        elapsed = time.monotonic() - killed_at
    finally:
        worker.kill()
        worker.wait()
    print(f"\nactor_lost reached the CLI {elapsed * 1000:.0f} ms after kill -9")
    assert call.returncode == 1
    assert err.startswith("actornet: actor_lost: actor stall-1 was lost"), err
    assert elapsed < 1.0


def test_bad_config_exits_non_zero_naming_file_and_key(tmp_path):
    """A config with a wrong value makes twistd exit 1 with the file and key in the message."""
    config = tmp_path / "bad.toml"
    config.write_text('[dispatcher]\nlisten = ["tcp:0"]\nhop_limit = 0\n')
    done = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "actornet", "--config", str(config)],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert (done.stdout, done.stderr) == (
        "", f"actornet: {config}: dispatcher.hop_limit: expected a positive integer, got 0\n")


def test_second_twistd_on_the_same_endpoint_exits_and_the_first_keeps_serving(network, tmp_path):
    """A second twistd with the same config and endpoint exits 1 with one clear line."""
    process, connection = network
    endpoint = json.loads(connection.read_text())["endpoint"]
    port = endpoint.rsplit("=", 1)[1]
    config = tmp_path / "same.toml"
    config.write_text(f'[dispatcher]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\n'
                      'connection_file = false\n')
    second = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "actornet", "--config", str(config)],
        capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert (f"actornet: cannot listen on tcp:{port}:interface=127.0.0.1: Couldn't listen on "
            f"127.0.0.1:{port}: [Errno 98] Address already in use.") in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    done = cli("call", "math", "add", "--data", '{"a": 2, "b": 3}',
               "--connection-file", str(connection))
    assert json.loads(done.stdout) == {"result": 5}


def test_workers_fetch_inventory_metrics_and_stop(network, tmp_path):
    """The built-in actors answer through the CLI and HTTP, and `actornet stop` ends the network."""
    process, connection = network
    where = ("--connection-file", str(connection))
    workers = cli("workers", *where)
    assert workers.returncode == 0, workers.stderr
    header, *rows = workers.stdout.splitlines()
    assert header.split() == ["NAME", "SERVICES", "DISPATCHER", "STATUS", "ALIVE-FOR",
                              "HOLDTIME", "KA-TX", "KA-RX", "IN-FLIGHT", "HANDLED"]
    assert sorted(row.split()[0] for row in rows) == [
        "files", "insurance", "intake", "inventory", "jobs", "keepalive", "math-1", "math-2",
        "provider"]
    assert all(row.split()[2:4] == ["dispatcher", "alive"] for row in rows)
    dest = tmp_path / "downloads"
    dest.mkdir()
    fetched = cli("fetch", "hello.txt", "--dest", str(dest), *where)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["skipped"] is False
    assert (dest / "hello.txt").read_bytes() == (EXAMPLES / "files" / "hello.txt").read_bytes()
    again = cli("fetch", "hello.txt", "--dest", str(dest), *where)
    assert json.loads(again.stdout)["skipped"] is True
    inventory = cli("call", "inventory", "get", "--data",
                    '{"name": "math-2", "services": ["math"]}', *where)
    assert json.loads(inventory.stdout)["pool"] == "b"
    for n in range(3):
        cli("call", "math", "add", "--data", f'{{"a": {n}, "b": 1}}', *where)
    metrics = urllib.request.urlopen(process.monitoring + "/metrics", timeout=10).read().decode()
    served = sum(s.value for family in text_string_to_metric_families(metrics)
                 for s in family.samples
                 if s.name == "actornet_requests_total" and s.labels["service"] == "math")
    assert served == 3
    status = json.loads(urllib.request.urlopen(process.monitoring + "/status", timeout=10).read())
    assert (status["status"], status["actors"]) == ("ok", 9)
    health = json.loads(urllib.request.urlopen(process.health + "/status", timeout=10).read())
    assert (health["status"], health["actors"]) == ("ok", 9)
    stopped = cli("stop", *where)
    assert json.loads(stopped.stdout) == {"stopping": True}
    process.wait(timeout=15)
    assert process.returncode == 0


def test_a_frozen_actor_process_is_declared_dead_after_its_holdtime(tmp_path):
    """SIGSTOP on an actor's process: after interval x multiplier the dispatcher drops it."""
    connection = tmp_path / "connection.json"
    (tmp_path / "stall.py").write_text(STALL_MODULE)
    (tmp_path / "hub.toml").write_text(
        '[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\nkeepalive_interval = 0.3\n'
        'keepalive_multiplier = 3\n\n'
        '[[actor]]\nclass = "actornet.actors.keepalive:Keepalive"\nname = "keepalive"\n')
    hub = start_twistd(tmp_path / "hub.toml", tmp_path)
    worker = None
    try:
        hub.output.wait_for("actor keepalive joined")
        endpoint = json.loads(connection.read_text())["endpoint"]
        (tmp_path / "join.toml").write_text(
            f'[join]\nconnect = "{endpoint}"\n\n'
            '[[actor]]\nclass = "stall:Stall"\nname = "stall-1"\n')
        worker = start_twistd(tmp_path / "join.toml", tmp_path)
        hub.output.wait_for("actor stall-1 joined")
        worker.output.wait_for(f"actor stall-1 connected to the dispatcher at {endpoint} "
                               "(connection ")
        frozen_at = time.monotonic()
        worker.send_signal(signal.SIGSTOP)
        line = hub.output.wait_for("dropping stall-1: no frame for")
        waited = time.monotonic() - frozen_at
        assert "(holdtime 0.9 s)" in line
        assert 0.9 <= waited < 3.0
        dead = cli("workers", "--status", "dead", "--json", "--connection-file",
                   str(connection))
        (row,) = json.loads(dead.stdout)
        assert (row["name"], row["status"], row["event"]) == ("stall-1", "dead", "died")
        assert row["reason"].startswith("no frame for ") and row["reason"].endswith(
            " s (holdtime 0.9 s)")
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGCONT)
            worker.kill()
            worker.wait()
        stop(hub)


def test_sighup_reloads_the_inventory(network, tmp_path):
    """Editing the inventory file and sending SIGHUP changes what `inventory get` answers."""
    process, connection = network
    where = ("--connection-file", str(connection))
    before = cli("call", "inventory", "get", "--data", '{"name": "math-1"}', *where)
    assert json.loads(before.stdout)["site"] == "lab-1"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("site: lab-1", "site: lab-2"))
    process.send_signal(signal.SIGHUP)
    process.output.wait_for("SIGHUP: telling every actor to reload")
    after = None
    for _ in range(50):
        after = json.loads(cli("call", "inventory", "get", "--data", '{"name": "math-1"}',
                               *where).stdout)
        if after["site"] == "lab-2":
            break
    assert after["site"] == "lab-2"


@pytest_twisted.ensureDeferred
async def test_kit_runs_twistd_networks_and_kills_actor_processes(actornet_twistd, tmp_path):
    """The kit's twistd mode: a hub and a worker process; killing the worker's process
    fails the pending ask with ActorLost."""
    connection = tmp_path / "connection.json"
    (tmp_path / "stall.py").write_text(STALL_MODULE)
    (tmp_path / "hub.toml").write_text(
        f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\n')
    hub = await actornet_twistd(tmp_path / "hub.toml")
    endpoint = json.loads(connection.read_text())["endpoint"]
    (tmp_path / "worker.toml").write_text(
        f'[join]\nconnect = "{endpoint}"\n\n[[actor]]\nclass = "stall:Stall"\nname = "stall-1"\n')
    worker = await actornet_twistd(tmp_path / "worker.toml", ready="twistd")
    await hub.wait_for_line("actor stall-1 joined")
    client = await connect(connection_file=str(connection))
    try:
        pending = client.ask("stall", "wait", timeout=30)
        await worker.wait_for_line("holding a request")
        assert (await worker.kill())[1] == signal.SIGKILL
        with pytest.raises(ActorLost):
            await pending
    finally:
        await client.close()
    assert await hub.stop() == (None, signal.SIGTERM)


COUNTER_MODULE = '''
from actornet import Actor, handler

class Counter(Actor):
    services = ("count",)
    calls = 0

    @handler
    def count(self, bag):
        self.calls += 1
        return {"calls": self.calls}
'''


@pytest_twisted.ensureDeferred
async def test_a_joined_actor_fails_over_to_the_next_dispatcher_in_its_list(actornet_twistd,
                                                                            tmp_path):
    """[join] connect = [hub 1, hub 2]: the actor registers with hub 1; when hub 1's
    process is killed it registers with hub 2 under the same name, its count going on."""
    (tmp_path / "counter.py").write_text(COUNTER_MODULE)
    hubs, endpoints = [], []
    for number in (1, 2):
        connection = tmp_path / f"hub{number}.json"
        (tmp_path / f"hub{number}.toml").write_text(
            f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
            f'connection_file = "{connection}"\n')
        hubs.append(await actornet_twistd(tmp_path / f"hub{number}.toml"))
        endpoints.append(json.loads(connection.read_text())["endpoint"])
    (tmp_path / "worker.toml").write_text(
        f'[join]\nconnect = {json.dumps(endpoints)}\n\n'
        '[[actor]]\nclass = "counter:Counter"\nname = "counter"\n')
    worker = await actornet_twistd(tmp_path / "worker.toml", ready="twistd")
    await worker.wait_for_line(f"actor counter connected to the dispatcher at {endpoints[0]} ")
    await hubs[0].wait_for_line("actor counter joined")
    client = await connect(endpoints[0])
    assert (await client.ask("count", "count"))["calls"] == 1
    await hubs[0].kill()
    await worker.wait_for_line(f"actor counter connected to the dispatcher at {endpoints[1]} ")
    await hubs[1].wait_for_line("actor counter joined")
    client = await connect(endpoints[1])
    try:
        assert (await client.ask("count", "count"))["calls"] == 2
    finally:
        await client.close()


def test_a_user_folder_with_its_own_protocols_dispatcher_and_actors_modules_runs(tmp_path):
    """User modules named like the card's folders (a ``protocols/`` package,
    ``dispatcher.py``, ``actors.py``) beside the config shadow nothing of actornet's."""
    (tmp_path / "protocols").mkdir()
    (tmp_path / "protocols" / "__init__.py").write_text("USER_PROTOCOLS = True\n")
    (tmp_path / "dispatcher.py").write_text("USER_DISPATCHER = True\n")
    (tmp_path / "actors.py").write_text(
        "import dispatcher\nimport protocols\nfrom actornet import Actor, handler\n\n"
        "class Echo(Actor):\n    services = ('echo',)\n\n    @handler\n"
        "    def echo(self, bag):\n"
        "        return {'said': bag['say'], 'user_modules': dispatcher.USER_DISPATCHER"
        " and protocols.USER_PROTOCOLS}\n")
    connection = tmp_path / "connection.json"
    (tmp_path / "net.toml").write_text(
        f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\n'
        '[[actor]]\nclass = "actors:Echo"\n'
        '[[actor]]\nclass = "actornet.actors.keepalive:Keepalive"\n')
    process = start_twistd("net.toml", tmp_path)
    try:
        process.output.wait_for("actor echo joined")
        done = cli("call", "echo", "echo", "--data", '{"say": "hi"}',
                   "--connection-file", str(connection), cwd=tmp_path)
        assert (done.returncode, json.loads(done.stdout)) == (
            0, {"said": "hi", "user_modules": True})
        workers = cli("workers", "--json", "--connection-file", str(connection), cwd=tmp_path)
        assert sorted(row["name"] for row in json.loads(workers.stdout)) == ["echo", "keepalive"]
    finally:
        stop(process)


def test_only_actornet_and_its_twistd_plugin_are_installed_at_the_top_level():
    """The card's folders install inside the one import package ``actornet``."""
    from importlib.metadata import distribution

    files = distribution("actornet").files
    tops = {file.parts[0] for file in files
            if not file.parts[0].endswith(".dist-info") and ".." not in file.parts
            and not file.parts[0].startswith("__editable__")}
    plugins = {file.as_posix() for file in files if file.parts[0] == "twisted"}
    assert tops <= {"actornet", "twisted"}
    assert {p for p in plugins if not p.endswith(".pyc")} <= {
        "twisted/plugins/actornet_plugin.py"}


def test_a_second_network_does_not_take_over_a_running_networks_connection_file(network,
                                                                               tmp_path):
    """Network B configured with A's connection file exits with one line naming the
    file and A's pid; A keeps its file and keeps answering."""
    process, connection = network
    before = connection.read_text()
    config = tmp_path / "other.toml"
    config.write_text(f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                      f'connection_file = "{connection}"\n')
    second = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "actornet", "--config", str(config)],
        capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    message = (f"actornet: the connection file {connection} belongs to the dispatcher with pid "
               f"{process.pid} ({json.loads(before)['endpoint']}), which is running; give this "
               "network its own connection_file in [dispatcher] (or false for none)")
    assert second.stdout.count(message) == 1
    assert "Traceback" not in second.stdout + second.stderr
    assert connection.read_text() == before
    done = cli("call", "math", "add", "--data", '{"a": 2, "b": 2}',
               "--connection-file", str(connection))
    assert json.loads(done.stdout) == {"result": 4}


def test_a_stale_connection_file_is_replaced_with_a_log_line(tmp_path):
    """A connection file whose dispatcher is gone is replaced, and the log says so."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps({"endpoint": "tcp:host=127.0.0.1:port=1", "token": None,
                                      "pid": dead_pid}))
    (tmp_path / "net.toml").write_text(
        f'[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        f'connection_file = "{connection}"\n')
    process = start_twistd(tmp_path / "net.toml", tmp_path)
    try:
        process.output.wait_for(f"replacing the stale connection file {connection} "
                                f"(its dispatcher, pid {dead_pid}, is not running)")
        process.output.wait_for("listening on")
        assert json.loads(connection.read_text())["pid"] == process.pid
        assert cli("status", "--connection-file", str(connection)).returncode == 0
    finally:
        stop(process)
    assert not connection.exists()


def test_a_second_twistd_from_the_same_folder_says_so_once(tmp_path):
    """twistd's own pid file guard: the second start names the first's pid, once."""
    (tmp_path / "net.toml").write_text('[dispatcher]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                                       'connection_file = false\n')
    first = subprocess.Popen([str(BIN / "twistd"), "-n", "actornet", "--config", "net.toml"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    first.output = Output(first.stdout)
    try:
        first.output.wait_for("listening on")
        second = subprocess.run([str(BIN / "twistd"), "-n", "actornet", "--config", "net.toml"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=30)
        said = second.stdout + second.stderr
        assert second.returncode == 1
        assert said.count(f"Another twistd server is running, PID {first.pid}") == 1
        assert first.poll() is None
    finally:
        stop(first)
    assert not (tmp_path / "twistd.pid").exists()


def test_a_failed_start_leaves_no_pid_file(tmp_path):
    """A dispatcher that cannot listen exits 1 with one line and removes twistd.pid."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    (tmp_path / "net.toml").write_text(
        f'[dispatcher]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\nconnection_file = false\n')
    try:
        done = subprocess.run([str(BIN / "twistd"), "-n", "actornet", "--config", "net.toml"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=30)
    finally:
        taken.close()
    assert done.returncode == 1
    assert done.stdout.count(f"actornet: cannot listen on tcp:{port}:interface=127.0.0.1") == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "twistd.pid").exists()


def test_the_cli_says_when_the_connection_files_dispatcher_is_not_running(tmp_path):
    """A connection file left by a dispatcher that died names that pid, not a hang or a
    connection error."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps({"endpoint": "tcp:host=127.0.0.1:port=1", "token": None,
                                      "pid": int(gone.stdout)}))
    done = cli("workers", "--connection-file", str(connection))
    assert done.returncode == 1
    assert done.stderr == (f"actornet: connection failed: the dispatcher in {connection} "
                           f"(pid {int(gone.stdout)}) is not running\n")


def test_the_log_speaks_plainly(network):
    """The splash line reads as a sentence, and a refused peer is named with the reason."""
    process, connection = network
    splash = process.output.wait_for("listening on")
    assert "actornet: dispatcher 'dispatcher' listening on tcp:0:interface=127.0.0.1 " in splash
    endpoint = json.loads(connection.read_text())["endpoint"]
    done = cli("workers", "--connect", endpoint)
    assert done.returncode == 1
    line = process.output.wait_for(": unauthorized: a token is required")
    assert re.search(r"closing connection \d+: unauthorized: a token is required$",
                     line.rstrip()), line


def test_jobs_are_submitted_waited_for_and_listed_from_the_cli(network):
    """`actornet submit` prints a job id at once; `actornet job ID --wait` its result;
    `actornet jobs` the table."""
    _, connection = network
    where = ("--connection-file", str(connection))
    submitted = cli("submit", "math", "add", "--data", '{"a": 2, "b": 3}', *where)
    assert submitted.returncode == 0, submitted.stderr
    answer = json.loads(submitted.stdout)
    assert answer["status"] == 202 and sorted(answer["actors"]) == ["math-1", "math-2"]
    waited = cli("job", answer["job"], "--wait", *where)
    assert waited.returncode == 0, waited.stderr
    row = json.loads(waited.stdout)
    assert row["state"] == "done" and row["result"] == {"result": 5}
    assert row["answered_by"] in ("math-1", "math-2")
    listed = cli("jobs", *where)
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["JOB", "SERVICE", "METHOD", "STATE"]
    assert [row.split()[:4] for row in rows] == [[answer["job"], "math", "add", "done"]]
    refused = cli("submit", "nobody", "x", *where)
    assert refused.returncode == 1 and refused.stderr.startswith("actornet: unknown_service")
