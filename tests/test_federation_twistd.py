"""The launch path of a federation: real ``twistd --reactor=asyncio actornet``
processes joined over a real ``nats-server``, driven by the ``actornet`` CLI."""

import json
import signal
import socket
import subprocess
import time

import pytest
from test_twistd import BIN, cli, start_twistd, stop

pytestmark = pytest.mark.timeout(60)

ECHO_MODULE = '''
from actornet import Actor, handler

class Echo(Actor):
    services = ("echo",)

    @handler
    def echo(self, bag):
        return dict(bag, answered_by=self.name)
'''

CONFIG = """
[dispatcher]
name = "{name}"
listen = ["tcp:0:interface=127.0.0.1"]
connection_file = "{connection}"
keepalive_interval = 0.5

[federation]
servers = ["{nats}"]
network = "launch"
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nats_url(tmp_path):
    """One ``nats-server`` with JetStream on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "nats-server"), "--addr", "127.0.0.1", "--port", str(port), "--jetstream",
         "--store_dir", str(tmp_path / "js")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    for line in process.stdout:
        if "Server is ready" in line:
            break
    yield f"nats://127.0.0.1:{port}"
    process.kill()
    process.wait()


def start_dispatcher(tmp_path, name, nats_url, actors="", reactor="asyncio"):
    connection = tmp_path / f"{name}.json"
    config = tmp_path / f"{name}.toml"
    config.write_text(CONFIG.format(name=name, connection=connection, nats=nats_url) + actors)
    argv_reactor = [f"--reactor={reactor}"] if reactor else []
    process = start_twistd(config, tmp_path, twistd_options=argv_reactor)
    return process, connection


def test_a_cli_call_at_one_dispatcher_is_answered_by_an_actor_of_another(tmp_path, nats_url):
    (tmp_path / "echoes.py").write_text(ECHO_MODULE)
    a, a_file = start_dispatcher(tmp_path, "A", nats_url)
    b, _ = start_dispatcher(tmp_path, "B", nats_url,
                            '\n[[actor]]\nclass = "echoes:Echo"\nname = "echo-b"\n')
    try:
        a.output.wait_for("joined network 'launch'")
        b.output.wait_for("actor echo-b joined")
        a.output.wait_for("dispatcher 'B' (")
        deadline = time.monotonic() + 10
        while True:
            called = cli("call", "echo", "echo", "--data", '{"x": 7}', "--route",
                         "--connection-file", str(a_file))
            if called.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == {"x": 7, "answered_by": "echo-b"}
        hops = [line.split()[1] for line in called.stderr.splitlines()[2:]]
        assert hops[1:] == ["A", "B", "echo-b", "B", "A"]
        listed = cli("dispatchers", "--json", "--connection-file", str(a_file))
        assert [row["name"] for row in json.loads(listed.stdout)["dispatchers"]] == ["A", "B"]
        stop(b)
        a.output.wait_for("lost dispatcher 'B': it stopped")
        listed = cli("dispatchers", "--json", "--connection-file", str(a_file))
        assert [row["name"] for row in json.loads(listed.stdout)["dispatchers"]] == ["A"]
        gone = cli("call", "echo", "echo", "--connection-file", str(a_file))
        assert gone.returncode != 0 and gone.stderr.startswith("actornet: no_workers:")
    finally:
        stop(a)
        stop(b)
    assert a.returncode in (0, -signal.SIGTERM)


def test_federation_on_the_default_reactor_exits_with_one_line_naming_the_flag(tmp_path,
                                                                                nats_url):
    process, _ = start_dispatcher(tmp_path, "A", nats_url, reactor=None)
    process.wait(timeout=30)
    assert process.returncode == 1
    assert "".join(process.output.lines) == (
        "actornet: [federation] needs Twisted's asyncio reactor: start with "
        "twistd --reactor=asyncio actornet --config FILE\n")
