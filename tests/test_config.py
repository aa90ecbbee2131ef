"""Config files: what a good one becomes, and how each mistake is named."""

import pytest

from actornet.config import ConfigError, load
from actornet.listening import listens_on_loopback

MATH = '[[actor]]\nclass = "config_stub_actors:MathServer"\n'


def write(tmp_path, text):
    (tmp_path / "config_stub_actors.py").write_text(
        "from actornet import Actor\n\nclass MathServer(Actor):\n    services = ('math',)\n\n"
        "class Plain:\n    pass\n")
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_a_good_config_becomes_records_with_defaults(tmp_path):
    """Listen endpoints, token, instances and options land where they belong."""
    path = write(tmp_path, '[dispatcher]\nlisten = "tcp:0"\ntoken = "t"\n'
                           '[[actor]]\nclass = "config_stub_actors:MathServer"\nname = "m"\n'
                           'instances = 3\noptions = { depth = 2 }\n')
    network = load(path)
    assert network.dispatcher.listen == ("tcp:0",)
    assert network.token == "t"
    assert network.dispatcher.settings.keepalive_interval == 5.0
    assert [a.name for a in network.actors] == ["m-1", "m-2", "m-3"]
    assert network.actors[0].services == ("math",)
    actor = network.actors[0].build()
    assert actor.options == {"depth": 2} and actor.config_dir == tmp_path


@pytest.mark.parametrize("text, problem", [
    ("[dispatcher]\nlisten = 5\n", "dispatcher.listen: expected text or a list of text, got 5"),
    ("[dispatcher]\nlisten = []\n", "dispatcher.listen: needs at least one endpoint string"),
    ("[dispatcher]\nlisten = 'tcp:0'\nhop_limit = 0\n",
     "dispatcher.hop_limit: expected a positive integer, got 0"),
    ("[dispatcher]\nlisten = 'tcp:0'\nkeepalive_interval = true\n",
     "dispatcher.keepalive_interval: expected a positive number of seconds, got True"),
    ("[dispatcher]\nlisten = 'tcp:0'\nlisen = 1\n", "dispatcher.lisen: unknown key (a typo?)"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[[actor]]\nclass = 'nowhere:Thing'\n",
     "actor[0].class: cannot import 'nowhere': ModuleNotFoundError: No module named 'nowhere'"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[[actor]]\nclass = 'config_stub_actors:Nope'\n",
     "actor[0].class: 'config_stub_actors:Nope': module config_stub_actors has no Nope"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[[actor]]\nclass = 'config_stub_actors:Plain'\n",
     "actor[0].class: 'config_stub_actors:Plain' is not an Actor subclass"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[[actor]]\nclass = 'actors.keepalive:Keepalive'\n",
     "actor[0].class: 'actors.keepalive:Keepalive' is now spelled "
     "'actornet.actors.keepalive:Keepalive'"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[[actor]]\nclass = 'config_stub_actors'\n",
     "actor[0].class: expected 'package.module:Class', got 'config_stub_actors'"),
    ("[dispatcher]\nlisten = 'tcp:0'\n" + MATH + "instances = 0\n",
     "actor[0].instances: expected a positive integer, got 0"),
    ("[dispatcher]\nlisten = 'tcp:0'\n" + MATH + MATH,
     "the actor name 'mathserver' is used more than once"),
    (MATH, "needs a [dispatcher] table (to run one) or a [join] table"),
    ("[join]\nconnect = 'tcp:host=x:port=1'\n", "[join] without any [[actor]] runs nothing"),
    ("[dispatcher]\nlisten = 'tcp:0'\n[join]\nconnect = 'tcp:host=x:port=1'\n",
     "has both [dispatcher] and [join]"),
    ("[dispatcher\n", "not valid TOML"),
    ("[dispatcher]\nlisten = 'tcpp:5614'\n",
     "dispatcher.listen: 'tcpp:5614' is not a usable endpoint: Unknown endpoint type: 'tcpp'"),
    ("[dispatcher]\nlisten = 'tcp:0'\nhttp = 'tcp:abc'\n",
     "dispatcher.http: 'tcp:abc' is not a usable endpoint: invalid literal for int()"),
    ("[join]\nconnect = 'tcpp:host=x:port=1'\n" + MATH,
     "join.connect: 'tcpp:host=x:port=1' is not a usable endpoint: Unknown endpoint type"),
    ("[join]\nconnect = ['tcp:host=x:port=1', 'tcpp:host=y:port=2']\n" + MATH,
     "join.connect[1]: 'tcpp:host=y:port=2' is not a usable endpoint: Unknown endpoint type"),
    ("[join]\nconnect = ['tcp:host=x:port=1', 5]\n" + MATH,
     "join.connect[1]: expected an endpoint string, got 5"),
    ("[join]\nconnect = ['']\n" + MATH, "join.connect[0]: expected an endpoint string, got ''"),
    ("[join]\nconnect = []\n" + MATH, "join.connect: needs at least one endpoint string"),
    ("[join]\nconnect = 5\n" + MATH,
     "join.connect: expected an endpoint string or a list of them, got 5"),
    ("[dispatcher]\nlisen = 'tcp:0'\n", "dispatcher.lisen: unknown key (a typo?)"),
    ("[dispatcher]\nlisten = 'tcp:0'\nmax_targets = 0\n",
     "dispatcher.max_targets: expected a positive integer, got 0"),
])
def test_each_mistake_names_the_file_and_the_key(tmp_path, text, problem):
    """A bad config raises ConfigError starting with the file's path and naming the key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_a_missing_file_is_named(tmp_path):
    """A config that cannot be read says which file and why."""
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the config: No such file"):
        load(tmp_path / "nope.toml")


def test_the_limits_against_hostile_peers_are_config_keys(tmp_path):
    """The slow-consumer time and the other limits can be set in [dispatcher]."""
    path = write(tmp_path, "[dispatcher]\nlisten = 'tcp:0'\nslow_consumer_seconds = 2.5\n"
                           "max_in_flight_per_asker = 50\n")
    settings = load(path).dispatcher.settings
    assert (settings.slow_consumer_seconds, settings.max_in_flight_per_asker) == (2.5, 50)
    assert settings.max_targets == 256


@pytest.mark.parametrize("connect, endpoints", [
    ("'tcp:host=a:port=1'", ("tcp:host=a:port=1",)),
    ("['tcp:host=a:port=1', 'tcp:host=b:port=2']", ("tcp:host=a:port=1", "tcp:host=b:port=2")),
])
def test_join_connect_is_one_endpoint_or_a_list_tried_in_order(tmp_path, connect, endpoints):
    """[join] connect takes one endpoint string or a list; either way it becomes the
    tuple of endpoints the actors try, in order."""
    path = write(tmp_path, f"[join]\nconnect = {connect}\ntoken = 't'\n" + MATH)
    assert load(path).join.connect == endpoints


FEDERATED = "[dispatcher]\nlisten = 'tcp:0'\nname = 'A'\n[federation]\n"


@pytest.mark.parametrize("text, problem", [
    ("[dispatcher]\nlisten = 'tcp:0'\n[federation]\nservers = ['nats://h:4222']\n",
     "dispatcher.name: is required with [federation]"),
    ("[dispatcher]\nlisten = 'tcp:0'\nname = 'a.b'\n[federation]\nservers = ['nats://h:4222']\n",
     "dispatcher.name: with [federation], letters, digits, '-' and '_' only"),
    (FEDERATED, "federation.servers: is required"),
    (FEDERATED + "servers = []\n", "federation.servers: needs at least one nats:// URL"),
    (FEDERATED + "servers = ['http://h:4222']\n", "federation.servers[0]: expected nats://"),
    (FEDERATED + "servers = ['nats://h:4222', 'nats://h']\n", "federation.servers[1]"),
    (FEDERATED + "servers = ['nats://h:4222']\nnetwork = 'a b'\n",
     "federation.network: expected letters, digits, '-' and '_'"),
    (FEDERATED + "servers = ['nats://h:4222']\nuser = 'u'\n",
     "federation.password: user and password go together"),
    (FEDERATED + "servers = ['nats://h:4222']\ntoken = 't'\nuser = 'u'\npassword = 'p'\n",
     "federation.token: use a token or a user and password, not both"),
    (FEDERATED + "servers = ['nats://h:4222']\nreplicas = 9\n",
     "federation.replicas: expected an integer from 1 to 5"),
    (FEDERATED + "servers = ['nats://h:4222']\nserver = 'x'\n", "federation.server: unknown key"),
    ("[join]\nconnect = 'tcp:host=a:port=1'\n[federation]\nservers = ['nats://h:4222']\n",
     "[federation] joins a dispatcher to others"),
])
def test_each_federation_mistake_names_the_key(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_a_federation_table_is_read_with_its_defaults(tmp_path):
    path = write(tmp_path, FEDERATED + "servers = ['nats://h:4222', 'tls://g:4223']\n"
                                       "token = 's3cret'\n")
    federation = load(path).dispatcher.federation
    assert federation.servers == ("nats://h:4222", "tls://g:4223")
    assert (federation.network, federation.replicas, federation.token) == ("actornet", 2,
                                                                           "s3cret")
    assert federation.tls is not None
    assert "s3cret" not in repr(federation)
    assert load(write(tmp_path, "[dispatcher]\nlisten = 'tcp:0'\n")).dispatcher.federation \
        is None


@pytest.mark.parametrize("value, where", [
    ('"127.0.0.1:5574"', ("127.0.0.1", 5574)),
    ('"0.0.0.0:0"', ("0.0.0.0", 0)),
    ('"[::1]:5574"', ("::1", 5574)),
    ('"localhost:80"', ("localhost", 80)),
])
def test_health_is_a_host_and_a_port(tmp_path, value, where):
    """``health = "host:port"`` becomes (host, port); IPv6 hosts are in brackets."""
    path = write(tmp_path, f"[dispatcher]\nlisten = 'tcp:0'\nhealth = {value}\n")
    assert load(path).dispatcher.health == where


@pytest.mark.parametrize("value, problem", [
    ("5573", 'dispatcher.health: expected "host:port", e.g. "127.0.0.1:5574", got 5573'),
    ('"5573"', 'dispatcher.health: expected "host:port" with a port from 0 to 65535, '
               'e.g. "127.0.0.1:5574", got \'5573\''),
    ('":5573"', "got ':5573'"),
    ('"127.0.0.1:http"', "got '127.0.0.1:http'"),
    ('"127.0.0.1:70000"', "got '127.0.0.1:70000'"),
    ('"127.0.0.1:-1"', "got '127.0.0.1:-1'"),
])
def test_a_bad_health_address_is_named(tmp_path, value, problem):
    path = write(tmp_path, f"[dispatcher]\nlisten = 'tcp:0'\nhealth = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert problem in str(raised.value)


def test_http_token_true_needs_a_token_and_must_be_a_boolean(tmp_path):
    """``http_token = true`` without ``token`` has nothing to check; "yes" is not a boolean."""
    path = write(tmp_path, "[dispatcher]\nlisten = 'tcp:0'\nhttp_token = true\n")
    with pytest.raises(ConfigError, match="dispatcher.http_token: true needs a token to "
                                          "check: set dispatcher.token"):
        load(path)
    path = write(tmp_path, "[dispatcher]\nlisten = 'tcp:0'\ntoken = 't'\nhttp_token = 'yes'\n")
    with pytest.raises(ConfigError, match="dispatcher.http_token: expected true or false"):
        load(path)


@pytest.mark.parametrize("keys, loopback, required", [
    ("token = 't'\n", True, None),
    ("token = 't'\n", False, "t"),
    ("", False, None),
    ("token = 't'\nhttp_token = false\n", False, None),
    ("token = 't'\nhttp_token = true\n", True, "t"),
])
def test_the_monitoring_token_is_off_on_loopback_and_on_elsewhere_by_default(
        tmp_path, keys, loopback, required):
    """By default a monitoring endpoint off loopback requires the token (when there is
    one) and one on loopback does not; ``http_token`` overrides both ways."""
    path = write(tmp_path, "[dispatcher]\nlisten = 'tcp:0'\n" + keys)
    assert load(path).dispatcher.monitoring_token(loopback) == required


@pytest.mark.parametrize("description, loopback", [
    ("tcp:5571:interface=127.0.0.1", True),
    ("tcp:port=5571:interface=127.0.0.2", True),
    ("tcp6:5571:interface=\\:\\:1", True),
    ("unix:/tmp/monitoring.sock", True),
    ("tcp:5571", False),
    ("tcp:5571:interface=0.0.0.0", False),
    ("tcp:5571:interface=10.1.2.3", False),
])
def test_which_endpoints_listen_on_loopback(description, loopback):
    assert listens_on_loopback(description) is loopback
