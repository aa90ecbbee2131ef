"""Registration hooks: when they run, what they are told, and what a failing one does."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import pytest_twisted
from registration_probe import reaches, reaches_http, records
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from actornet import connect, tap
from actornet.config import ConfigError, load
from actornet.dispatcher.core import Dispatcher
from actornet.fronts import Fronts
from actornet.listening import start_listening
from actornet.registration import Bound, Hook, IRegistration, NetworkInfo, Registrations

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@implementer(IRegistration)
class Recorder:
    """Records its calls in a shared list; ``answers`` says what each call returns."""

    def __init__(self, name, calls, **answers):
        self.name = name
        self.calls = calls
        self.answers = answers

    def register(self, info):
        self.calls.append((self.name, "register", info))
        return self.answers.get("register", succeed(None))

    def deregister(self, info):
        self.calls.append((self.name, "deregister", info))
        return self.answers.get("deregister", succeed(None))


@pytest.fixture
def logged():
    """Every log event's formatted text, while the test runs."""
    from twisted.logger import formatEvent

    lines = []

    def observer(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    yield lines
    globalLogPublisher.removeObserver(observer)


# -- the running order, in-process on real sockets ---------------------------------


@pytest_twisted.ensureDeferred
async def test_hooks_register_after_every_listener_listens_and_deregister_before_any_closes(
        tmp_path, logged):
    """Inside register and deregister every listener (tcp, unix, http) accepts a
    connection; a hook that fails is logged with its name and the network serves on."""
    shutil.copy(EXAMPLES / "mathserver.py", tmp_path)
    record = tmp_path / "record.jsonl"
    config = tmp_path / "net.toml"
    config.write_text(f"""
[dispatcher]
listen = ["tcp:0:interface=127.0.0.1", "unix:{tmp_path}/d.sock"]
http = "tcp:0:interface=127.0.0.1"
health = "127.0.0.1:0"
connection_file = false
name = "probed"

[gateway]
listen = "tcp:0:interface=127.0.0.1"

[[actor]]
class = "mathserver:MathServer"
name = "math"

[[registration]]
class = "registration_probe:Probe"
name = "probe"
options = {{ record = "{record}" }}

[[registration]]
class = "registration_probe:Probe"
name = "flaky"
options = {{ record = "{record}", refuse = "the registry said no" }}
""")
    root = tap.build(load(config), reactor)
    service = root.services[0]
    root.startService()
    try:
        await service.registrations.registering
        await next(root.actors()).when_attached()
        endpoint = service.connect_endpoint
        http = service.fronts.http.endpoint.port.getHost().port
        gateway = service.fronts.gateway_listener.endpoint.port.getHost().port
        client = await connect(endpoint, reactor=reactor)
        assert await client.ask("math", "add", {"a": 2, "b": 3}) == {"result": 5}
        await client.close()
    finally:
        await root.stopService()
    lines = records(record)
    assert [line["event"] for line in lines] == ["register", "register", "deregister",
                                                 "deregister"]
    assert all(line["reached"] and all(line["reached"].values()) for line in lines), lines
    assert list(lines[0]["reached"]) == [endpoint, f"unix:path={tmp_path}/d.sock",
                                         f"http://127.0.0.1:{http}/"]
    assert lines[0]["http"] == f"http://127.0.0.1:{http}/"
    assert (lines[0]["name"], lines[0]["actors"]) == ("probed", ["math"])
    assert any("registration 'flaky': register failed: RuntimeError: the registry said no"
               in line for line in logged), logged
    info = service.registrations.info
    assert (info.gateway, info.health) == (
        f"ws://127.0.0.1:{gateway}/", f"http://127.0.0.1:{service.fronts.health.port}/status")
    closed = [reaches(bound) for bound in info.listen] + [reaches_http(info.http)]
    assert closed == [False, False, False], "the probe cannot tell open from closed"


@pytest_twisted.ensureDeferred
async def test_the_doors_urls_bracket_ipv6_hosts_and_name_unix_sockets_by_endpoint(tmp_path):
    """The URLs hooks are told (and the splash line shows): an IPv6 host in brackets,
    and a door on a unix socket as its endpoint string."""
    config = tmp_path / "net.toml"
    config.write_text(f"""
[dispatcher]
listen = "tcp:0:interface=127.0.0.1"
http = "unix:{tmp_path}/http.sock"
health = "[::1]:5574"
connection_file = false

[gateway]
listen = "tcp:0:interface=127.0.0.1"
""")
    network = load(config).dispatcher
    fronts = Fronts(network, Dispatcher(reactor, network.settings), reactor)
    start_listening(fronts.listeners)
    try:
        gateway = fronts.gateway_listener.endpoint.port.getHost().port
        assert fronts.urls() == {"http": f"unix:{tmp_path}/http.sock",
                                 "health": "http://[::1]:5574/status",
                                 "gateway": f"ws://127.0.0.1:{gateway}/"}
        assert fronts.splash() == (f"; dashboard, metrics and status on unix:{tmp_path}/"
                                   f"http.sock; health (answers while the reactor is "
                                   f"blocked) on http://[::1]:5574/status")
    finally:
        for listener in fronts.listeners:
            await listener.stopService()


# -- the runner, on a Clock --------------------------------------------------------


def test_hooks_register_in_order_and_deregister_in_reverse_with_the_same_info():
    """Register goes first to last, deregister last to first, each told the same info."""
    calls = []
    hooks = [Hook(name, Recorder(name, calls)) for name in ("a", "b", "c")]
    runner = Registrations(hooks, Clock(), on_required_failure=None)
    assert runner.register("info").result is True
    runner.deregister()
    assert [call[:2] for call in calls] == [
        ("a", "register"), ("b", "register"), ("c", "register"),
        ("c", "deregister"), ("b", "deregister"), ("a", "deregister")]
    assert {call[2] for call in calls} == {"info"}


def test_a_hook_without_an_answer_is_timed_out_logged_and_the_next_one_runs(logged):
    """A register that never fires is given up after its timeout, named in the log,
    and the hooks after it still register."""
    calls = []
    clock = Clock()
    stuck = Hook("stuck", Recorder("stuck", calls, register=Deferred()), timeout=3)
    runner = Registrations([stuck, Hook("next", Recorder("next", calls))], clock, None)
    done = runner.register("info")
    clock.advance(2.9)
    assert [call[0] for call in calls] == ["stuck"]
    assert not done.called
    clock.advance(0.2)
    assert done.result is True
    assert [call[0] for call in calls] == ["stuck", "next"]
    assert any("registration 'stuck': register failed: no answer within 3s" in line
               for line in logged), logged


def test_a_required_hook_that_fails_stops_the_registering_and_says_so():
    """A required hook's failure is handed to on_required_failure and later hooks are
    not called; deregister still reaches the hooks that were called."""
    calls, failed = [], []
    hooks = [Hook("first", Recorder("first", calls)),
             Hook("needed", Recorder("needed", calls, register=_failing()), required=True),
             Hook("later", Recorder("later", calls))]
    runner = Registrations(hooks, Clock(), lambda hook, why: failed.append((hook.name, why)))
    assert runner.register("info").result is False
    assert [(name, why.getErrorMessage()) for name, why in failed] == [("needed", "no")]
    runner.deregister()
    assert [call[:2] for call in calls] == [
        ("first", "register"), ("needed", "register"),
        ("needed", "deregister"), ("first", "deregister")]


def test_a_hook_that_raises_is_logged_and_deregister_failures_too(logged):
    """Exceptions raised (not returned) by a hook are caught; neither call fails."""

    @implementer(IRegistration)
    class Broken:
        def register(self, info):
            raise KeyError("port")

        def deregister(self, info):
            return _failing("gone")

    runner = Registrations([Hook("broken", Broken())], Clock(), None)
    assert runner.register("info").result is True
    assert runner.deregister().result is None
    assert any("registration 'broken': register failed: KeyError: 'port'" in line
               for line in logged)
    assert any("registration 'broken': deregister failed: RuntimeError: gone" in line
               for line in logged)


def test_deregister_waits_for_a_register_still_running():
    """A stop during registering deregisters only after the register call is over."""
    calls = []
    slow = Deferred()
    clock = Clock()
    runner = Registrations([Hook("slow", Recorder("slow", calls, register=slow))], clock, None)
    runner.register("info")
    stopped = runner.deregister()
    assert not stopped.called and [call[1] for call in calls] == ["register"]
    slow.callback(None)
    assert stopped.called
    assert [call[1] for call in calls] == ["register", "deregister"]


def _failing(message="no"):
    d = Deferred()
    d.errback(RuntimeError(message))
    return d


# -- the [[registration]] table -----------------------------------------------------


def _config(tmp_path, registration, dispatcher=True):
    (tmp_path / "reg_hooks.py").write_text(HOOKS_MODULE)
    head = ('[dispatcher]\nlisten = ["tcp:0"]\n' if dispatcher
            else '[join]\nconnect = "tcp:host=127.0.0.1:port=1"\n\n[[actor]]\n'
                 'class = "actornet.actors.keepalive:Keepalive"\n')
    path = tmp_path / "net.toml"
    path.write_text(head + "\n" + registration)
    return path


HOOKS_MODULE = '''
from twisted.internet.defer import succeed
from zope.interface import implementer
from actornet.registration import IRegistration

@implementer(IRegistration)
class Consul:
    def __init__(self, url, interval=10):
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.url = url

    def register(self, info):
        return succeed(None)

    def deregister(self, info):
        return succeed(None)

class NotAHook:
    def register(self, info):
        pass
'''


def test_a_registration_table_makes_a_hook_from_its_class_and_options(tmp_path):
    """The class beside the config is called with the options; name defaults to the class."""
    path = _config(tmp_path, '[[registration]]\nclass = "reg_hooks:Consul"\n'
                             'options = { url = "http://127.0.0.1:8500" }\nrequired = true\n'
                             'timeout = 2.5\n')
    (hook,) = load(path).registrations
    assert (hook.name, hook.required, hook.timeout) == ("reg_hooks:Consul", True, 2.5)
    assert hook.hook.url == "http://127.0.0.1:8500"


@pytest.mark.parametrize("table, problem", [
    ('class = "reg_hooks:Nope"',
     "registration[0].class: 'reg_hooks:Nope': module reg_hooks has no Nope"),
    ('class = "nomodule:X"', "registration[0].class: cannot import 'nomodule': "
                             "ModuleNotFoundError: No module named 'nomodule'"),
    ('class = "reg_hooks:NotAHook"',
     "registration[0].class: 'reg_hooks:NotAHook' does not provide "
     "actornet.registration.IRegistration"),
    ('class = "reg_hooks:Consul"\noptions = { urll = "x" }',
     "registration[0].options: reg_hooks:Consul refused them: "),
    ('class = "reg_hooks:Consul"\noptions = { url = "x", interval = 0 }',
     "registration[0].options: reg_hooks:Consul refused them: interval must be positive, got 0"),
    ('class = "reg_hooks:Consul"\noptions = { url = "x" }\ntimeout = 0',
     "registration[0].timeout: expected a positive number of seconds, got 0.0"),
    ('class = "reg_hooks:Consul"\noptions = { url = "x" }\nrequired = "yes"',
     "registration[0].required: expected true or false, got 'yes'"),
    ('klass = "reg_hooks:Consul"', "registration[0].klass: unknown key (a typo?)"),
])
def test_a_bad_registration_table_is_a_config_error_naming_the_key(tmp_path, table, problem):
    """Unknown classes, classes that are no hook and bad options are named precisely."""
    path = _config(tmp_path, f"[[registration]]\n{table}\n")
    with pytest.raises(ConfigError) as error:
        load(path)
    assert str(error.value).startswith(f"{path}: {problem}"), str(error.value)


def test_registration_needs_a_dispatcher_and_names_of_its_own(tmp_path):
    """[[registration]] beside [join] is refused, and so are two hooks of one name."""
    one = '[[registration]]\nclass = "reg_hooks:Consul"\noptions = { url = "x" }\n'
    with pytest.raises(ConfigError, match="belongs in the config with the "
                                          r"\[dispatcher\] table"):
        load(_config(tmp_path, one, dispatcher=False))
    with pytest.raises(ConfigError, match="registration: the name 'reg_hooks:Consul' is used "
                                          "more than once"):
        load(_config(tmp_path, one + one))


# -- the README's example hook, against a stand-in Consul agent --------------------


class ConsulAgent(Resource):
    """Answers PUTs as a Consul agent does and keeps them; ``status`` is its answer."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.puts = []
        self.status = 200

    def render_PUT(self, request):
        body = request.content.read()
        self.puts.append((request.path.decode(), json.loads(body) if body else None))
        request.setResponseCode(self.status)
        return b"" if self.status == 200 else b"Invalid check: TCP address"


@pytest_twisted.ensureDeferred
async def test_the_example_consul_hook_registers_the_bound_port_and_deregisters(tmp_path):
    """examples/consul_hook.py PUTs the service with the port actually bound (tcp:0)
    and a TCP check, and removes it again on stop."""
    shutil.copy(EXAMPLES / "consul_hook.py", tmp_path)
    agent = ConsulAgent()
    port = reactor.listenTCP(0, Site(agent), interface="127.0.0.1")
    config = tmp_path / "net.toml"
    config.write_text(f"""
[dispatcher]
listen = ["tcp:0:interface=127.0.0.1"]
connection_file = false
name = "edge"

[[registration]]
class = "consul_hook:ConsulRegistration"
options = {{ agent = "http://127.0.0.1:{port.getHost().port}", check_interval = 5 }}
""")
    root = tap.build(load(config), reactor)
    service = root.services[0]
    try:
        root.startService()
        assert await service.registrations.registering is True
        bound = service.listeners[0].endpoint.port.getHost().port
        assert agent.puts == [("/v1/agent/service/register", {
            "ID": "actornet-edge", "Name": "actornet", "Tags": ["edge"],
            "Address": "127.0.0.1", "Port": bound,
            "Meta": {"version": service.registrations.info.version,
                     "pid": str(os.getpid())},
            "Check": {"TCP": f"127.0.0.1:{bound}", "Interval": "5s"}})]
        await root.stopService()
        assert agent.puts[1] == ("/v1/agent/service/deregister/actornet-edge", None)
    finally:
        await port.stopListening()


@pytest.mark.filterwarnings("ignore:Using readBody with a transport")
@pytest_twisted.ensureDeferred
async def test_a_refusing_consul_is_logged_with_its_answer(tmp_path, logged):
    """A Consul that answers 400 makes register fail with its answer in the log line."""
    shutil.copy(EXAMPLES / "consul_hook.py", tmp_path)
    sys.path.insert(0, str(tmp_path))
    from consul_hook import ConsulRegistration

    agent = ConsulAgent()
    agent.status = 400
    port = reactor.listenTCP(0, Site(agent), interface="127.0.0.1")
    hook = Hook("consul", ConsulRegistration(f"http://127.0.0.1:{port.getHost().port}"))
    runner = Registrations([hook], reactor, None)
    bound = Bound("tcp:0", "tcp:host=127.0.0.1:port=1", "127.0.0.1", 1)
    try:
        await runner.register(NetworkInfo("edge", 1, "here", (bound,), None, (), "0",
                                          snapshot=None))
    finally:
        await port.stopListening()
    assert any("registration 'consul': register failed: RuntimeError: Consul answered 400: "
               "Invalid check: TCP address" in line for line in logged), logged
