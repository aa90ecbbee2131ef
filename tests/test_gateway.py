"""The WebSocket gateway: autobahn's own client over loopback sockets against a real
dispatcher and actors (in this process, and through twistd)."""

import base64
import json
import re
import signal
import subprocess
import sys

import pytest
import pytest_twisted
from gateway_kit import Network, Refused, closed, open_gateway
from test_twistd import BIN, example_on_free_ports, start_twistd, stop
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import deferLater

from actornet import config

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def network(tmp_path):
    running = pytest_twisted.blockon(ensureDeferred(Network(tmp_path).start()))
    yield running
    pytest_twisted.blockon(ensureDeferred(running.stop()))


@pytest_twisted.ensureDeferred
async def test_a_call_through_the_gateway_answers_99(network):
    """A client offering no subprotocol speaks JSON: math add answers 99, with the
    route when asked, its first hop the gateway connection."""
    client = await open_gateway(network.port)
    assert client.welcome["protocol"] == "actornet.json"
    assert client.welcome["name"] == "gateway-dispatcher-1"
    answer = await client.call("math", "add", {"a": 50, "b": 49}, route=True)
    assert answer["op"] == "result" and answer["status"] == 200
    assert answer["result"] == {"result": 99}
    assert answer["route"][0]["name"] == "gateway-dispatcher-1"
    assert [stamp["hop"] for stamp in answer["route"]] == list(
        range(1, len(answer["route"]) + 1))
    await closed(client)


@pytest_twisted.ensureDeferred
async def test_a_subscriber_sees_an_actors_death(network):
    """Subscribed to actornet.actors, a client gets the event of the math server's
    death when its connection is cut."""
    client = await open_gateway(network.port)
    client.send({"op": "subscribe", "id": "s", "topic": "actornet.actors"})
    assert (await client.answer("s"))["status"] == 200
    network.actor("math").context.link.transport.abortConnection()
    event = await client.until(lambda f: f["op"] == "event")
    assert event["topic"] == "actornet.actors"
    assert event["data"]["event"] == "died" and event["data"]["name"] == "math"
    assert event["sender"] == "dispatcher"
    await closed(client)


@pytest_twisted.ensureDeferred
async def test_progress_reports_arrive_before_the_answer(network):
    """With progress: true, each report is a progress frame, in order, then the result."""
    client = await open_gateway(network.port)
    client.send({"op": "call", "id": "c", "service": "report", "method": "count",
                 "data": {"steps": 3}, "progress": True})
    seen = [await client.until(lambda f: f.get("id") == "c") for _ in range(4)]
    assert [f["op"] for f in seen] == ["progress", "progress", "progress", "result"]
    assert [f["data"]["done"] for f in seen[:3]] == [1, 2, 3]
    assert seen[0]["sender"] == "reporter"
    assert seen[3]["result"] == {"counted": 3}
    await closed(client)


@pytest_twisted.ensureDeferred
async def test_the_cbor_subprotocol_carries_binary_frames_and_bytes(network):
    """Under actornet.cbor, frames are CBOR binary messages and bytes stay bytes."""
    client = await open_gateway(network.port, protocols=["actornet.cbor"])
    assert client.websocket_protocol_in_use == "actornet.cbor"
    assert client.welcome["protocol"] == "actornet.cbor"
    answer = await client.call("math", "mul", {"a": 6, "b": 7})
    assert answer["result"] == {"result": 42}
    client.send(b"\xff\xff")
    error = await client.until(lambda f: f["op"] == "error")
    assert error["status"] == 400 and error["message"].startswith(
        "actornet: malformed_envelope: bad CBOR")
    client.send('{"op": "call"}')
    error = await client.until(lambda f: f["op"] == "error")
    assert error["message"] == ("actornet: malformed_envelope: actornet.cbor takes binary "
                                "frames, not text ones")
    assert (await client.call("math", "add", {"a": 1, "b": 2}))["result"] == {"result": 3}
    await closed(client)


BAD_INPUTS = [
    ("{not json", "bad JSON: Expecting property name enclosed in double quotes: "
                  "line 1 column 2 (char 1)", None),
    ("[1, 2]", "a message is an object (a map) with an 'op', not a list", None),
    ('{"id": 5}', "no 'op' field: say which operation (call, cancel, publish, subscribe "
                  "or unsubscribe)", 5),
    ('{"op": "cal", "id": "x"}', "unknown op 'cal': expected call, cancel, publish, "
                                 "subscribe or unsubscribe", "x"),
    ('{"op": "call", "id": 1, "method": "add"}', "call needs 'service' (text of 1 to "
                                                 "200 characters)", 1),
    ('{"op": "call", "id": 1, "service": "math", "method": "add", "timeout": -1}',
     "call's 'timeout' must be a positive number of seconds, got -1", 1),
    ('{"op": "call", "id": 1, "servce": "math", "method": "add"}',
     "call has no field 'servce' (a typo?); it takes data, id, method, progress, route, "
     "service, target, timeout", 1),
    ('{"op": "subscribe", "topic": 7}', "subscribe's 'topic' must be text of 1 to 200 "
                                        "characters, got 7", None),
    ('{"op": "cancel", "id": 99}', "no call with id 99 is in flight (answered already, or "
                                   "never made)", 99),
]


@pytest_twisted.ensureDeferred
async def test_every_bad_input_gets_an_error_and_connections_keep_working(network):
    """Each bad message gets an error frame naming the problem; the same connection and
    one opened before both go on being served."""
    before = await open_gateway(network.port)
    client = await open_gateway(network.port)
    for text, problem, id in BAD_INPUTS:
        client.send(text)
        error = await client.until(lambda f: f["op"] == "error")
        assert error == {"op": "error", "id": id, "status": 400,
                         "error": "malformed_envelope", "type": "BadMessage",
                         "message": f"actornet: malformed_envelope: {problem}"}, text
    unknown = await client.call("nope", "add")
    assert unknown["status"] == 404 and unknown["error"] == "unknown_service"
    assert unknown["type"] == "UnknownService"
    assert unknown["message"].startswith("actornet: unknown_service: ")
    failed = await client.call("math", "add", {"a": "x", "b": 1})
    assert failed["status"] == 500 and failed["type"] == "TypeError"
    assert failed["message"] == "actornet: failure (TypeError): a must be an integer, got 'x'"
    assert (await client.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    assert (await before.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    await closed(client)
    await closed(before)


@pytest.fixture
def limited(tmp_path):
    running = pytest_twisted.blockon(ensureDeferred(Network(
        tmp_path, gateway="max_message_bytes = 2048\nmax_calls = 2").start()))
    yield running
    pytest_twisted.blockon(ensureDeferred(running.stop()))


@pytest_twisted.ensureDeferred
async def test_an_oversize_message_closes_naming_the_limit_and_others_keep_working(limited):
    """A message over max_message_bytes closes that WebSocket (1009) with a reason naming
    the setting; a connection opened before goes on being served."""
    before = await open_gateway(limited.port)
    client = await open_gateway(limited.port)
    big = {"op": "publish", "topic": "big", "data": {"blob": "x" * 3000}}
    client.send(big)
    code, reason = await client.closed
    assert code == 1009
    assert reason == (f"message too big: {len(json.dumps(big))} bytes, over the gateway's "
                      f"max_message_bytes (2048)")
    assert (await before.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    await closed(before)


@pytest_twisted.ensureDeferred
async def test_an_answer_over_the_limit_becomes_a_too_large_error(limited):
    """The limit holds both ways: an answer too big to send is a 413 error frame."""
    client = await open_gateway(limited.port)
    small = await client.call("echo", "big", {"size": 100})
    assert small["result"] == {"blob": {"$base64": base64.b64encode(b"x" * 100).decode()}}
    large = await client.call("echo", "big", {"size": 3000})
    assert large["status"] == 413 and large["error"] == "too_large"
    assert large["message"].startswith("actornet: too_large: the result is ")
    assert large["message"].endswith(" bytes, over the gateway's max_message_bytes (2048)")
    assert (await client.call("math", "add", {"a": 1, "b": 1}))["result"] == {"result": 2}
    watcher = await open_gateway(limited.port)
    watcher.send({"op": "subscribe", "id": "s", "topic": "big"})
    await watcher.answer("s")
    publish = {"op": "publish", "id": "p", "topic": "big", "data": {"blob": ""}}
    publish["data"]["blob"] = "z" * (2040 - len(json.dumps(publish)))
    client.send(publish)
    assert (await client.answer("p"))["status"] == 200
    event = await watcher.until(lambda f: f["op"] in ("event", "error"))
    assert event["op"] == "error" and event["id"] is None and event["status"] == 413
    assert event["message"].startswith("actornet: too_large: an event on 'big' is ")
    await closed(watcher)
    await closed(client)


@pytest_twisted.ensureDeferred
async def test_too_many_calls_in_flight_are_refused_busy_and_cancel_frees_a_place(limited):
    """With max_calls = 2, a third call in flight gets 429 busy naming the limit; a
    cancelled call answers 'cancelled' and makes room; another connection is served
    all along."""
    before = await open_gateway(limited.port)
    client = await open_gateway(limited.port)
    for id in ("s1", "s2"):
        client.send({"op": "call", "id": id, "service": "report", "method": "slow",
                     "progress": True})
        await client.until(lambda f, id=id: f["op"] == "progress" and f["id"] == id)
    busy = await client.call("math", "add", {"a": 1, "b": 2})
    assert busy["status"] == 429 and busy["error"] == "busy"
    assert busy["message"] == ("actornet: busy: 2 calls are in flight on this connection "
                               "(the gateway's max_calls is 2): wait for an answer first")
    assert (await before.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    client.send({"op": "cancel", "id": "s1"})
    cancelled = await client.answer("s1")
    assert cancelled["status"] == 499 and cancelled["error"] == "cancelled"
    assert (await client.call("math", "add", {"a": 2, "b": 2}))["result"] == {"result": 4}
    await closed(client)
    await closed(before)


@pytest_twisted.ensureDeferred
async def test_closing_the_websocket_cancels_its_calls(network):
    """A call in flight when its WebSocket closes is cancelled: its handler is told to
    stop, as for any asker that disconnects."""
    reporter = network.actor("reporter")
    client = await open_gateway(network.port)
    client.send({"op": "call", "id": 1, "service": "report", "method": "slow",
                 "progress": True})
    await client.until(lambda f: f["op"] == "progress")
    await closed(client)
    while "slow saw CancelledError" not in reporter.ended:
        await deferLater(reactor, 0.01)
    assert "slow finally" in reporter.ended


@pytest.fixture
def guarded(tmp_path):
    """A network with a token and an identity; the gateway passes tokens through."""
    running = pytest_twisted.blockon(ensureDeferred(Network(
        tmp_path, dispatcher='token = "n3twork"\n\n[identities.web]\ntoken = "w3b"\n'
                             'register = "gateway-*"\nask = "math"').start()))
    yield running
    pytest_twisted.blockon(ensureDeferred(running.stop()))


@pytest_twisted.ensureDeferred
async def test_a_wrong_token_is_refused_401_and_others_keep_working(guarded):
    """Tokens pass through to the dispatcher: the network's token in the URL or an
    identity's in a Bearer header get in (the identity with its permissions); a wrong
    or missing one gets HTTP 401 and no WebSocket, and a connection made before is
    still served."""
    before = await open_gateway(guarded.port, token="n3twork")
    for token in ("wrong", None):
        with pytest.raises(Refused) as refused:
            await open_gateway(guarded.port, token=token)
        assert "[401]: unauthorized: " in str(refused.value)
    with pytest.raises(Refused) as refused:
        await open_gateway(guarded.port, token="wrong")
    assert ("[401]: unauthorized: the dispatcher refused gateway-dispatcher-"
            in str(refused.value))
    assert str(refused.value).endswith(': missing or wrong token")')
    web = await open_gateway(guarded.port, headers={"Authorization": "Bearer w3b"})
    assert (await web.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    forbidden = await web.call("echo", "echo")
    assert forbidden["status"] == 401 and forbidden["error"] == "unauthorized"
    assert (await before.call("math", "add", {"a": 50, "b": 49}))["result"] == {"result": 99}
    await closed(web)
    await closed(before)


@pytest_twisted.ensureDeferred
async def test_a_gateway_token_of_its_own_admits_and_the_gateway_uses_the_networks(tmp_path):
    """With [gateway] token, clients present that one; the network's own token is not
    accepted at the gateway (it is the gateway's to use)."""
    network = await Network(tmp_path, dispatcher='token = "n3twork"',
                            gateway='token = "g4te"').start()
    try:
        client = await open_gateway(network.port, headers={"Authorization": "Bearer g4te"})
        assert (await client.call("math", "add", {"a": 50, "b": 49}))["result"] == {
            "result": 99}
        with pytest.raises(Refused) as refused:
            await open_gateway(network.port, token="n3twork")
        assert str(refused.value).endswith('[401]: unauthorized: missing or wrong token")')
        with pytest.raises(Refused) as refused:
            await open_gateway(network.port)
        assert str(refused.value).endswith('[401]: unauthorized: a token is required")')
        assert (await client.call("math", "mul", {"a": 6, "b": 7}))["result"] == {
            "result": 42}
        await closed(client)
    finally:
        await network.stop()


@pytest_twisted.ensureDeferred
async def test_browser_origins_are_checked_and_clients_without_one_get_in(tmp_path):
    """Only the listed origins' pages may connect; a client sending no Origin (not a
    browser) is not concerned, and an unknown subprotocol is refused."""
    network = await Network(tmp_path, gateway='origins = ["http://127.0.0.1:5571"]').start()
    try:
        allowed = await open_gateway(network.port,
                                     headers={"Origin": "http://127.0.0.1:5571"})
        with pytest.raises(Refused) as refused:
            await open_gateway(network.port, headers={"Origin": "http://evil.example"})
        assert "origin 'http://evil.example' not allowed" in str(refused.value)
        with pytest.raises(Refused) as refused:
            await open_gateway(network.port, protocols=["wamp.2.json"])
        assert ("[400]: no subprotocol in common: offered wamp.2.json; the gateway speaks "
                "actornet.json, actornet.cbor") in str(refused.value)
        plain = await open_gateway(network.port)
        for client in (allowed, plain):
            assert (await client.call("math", "add", {"a": 1, "b": 2}))["status"] == 200
            await closed(client)
    finally:
        await network.stop()


@pytest_twisted.ensureDeferred
async def test_the_dashboards_origin_is_allowed_by_default(tmp_path):
    """With no origins configured, pages of the dispatcher's own http endpoint may connect."""
    network = await Network(tmp_path, dispatcher='http = "tcp:0:interface=127.0.0.1"').start()
    try:
        port = network.service.fronts.http.endpoint.port.getHost().port
        assert network.service.fronts.gateway.origins == (f"http://127.0.0.1:{port}",
                                                   f"http://localhost:{port}")
        client = await open_gateway(network.port,
                                    headers={"Origin": f"http://localhost:{port}"})
        await closed(client)
        with pytest.raises(Refused):
            await open_gateway(network.port, headers={"Origin": "http://localhost:1"})
    finally:
        await network.stop()


@pytest_twisted.ensureDeferred
async def test_the_gateway_stops_listening_before_the_dispatcher_drains(tmp_path):
    """While the dispatcher drains, the gateway takes no new connection and a call
    in flight still gets its answer; then its open WebSockets are closed saying why."""
    network = await Network(tmp_path).start()
    port = network.port
    client = await open_gateway(port)
    client.send({"op": "call", "id": 1, "service": "report", "method": "slow",
                 "progress": True})
    await client.until(lambda f: f["op"] == "progress")
    stopping = ensureDeferred(network.stop())
    while not network.service.dispatcher.requests.draining:
        await deferLater(reactor, 0.01)
    with pytest.raises(ConnectionRefusedError):
        await open_gateway(port)
    network.actor("reporter").gates[0].callback(None)
    answer = await client.answer(1)
    assert answer["result"] == {"finished": True}
    await stopping
    code, reason = await client.closed
    assert (code, reason) == (1000, "the gateway lost its connection to the dispatcher")


@pytest.fixture
def example_network(tmp_path):
    """The example network (examples/ copied, with its [gateway]) on free ports, as a
    twistd subprocess with a token; yields the process, the gateway's URL and the
    connection file."""
    connection = tmp_path / "connection.json"
    config = example_on_free_ports(
        tmp_path, f'connection_file = "{connection}"\ntoken = "t0ken"')
    process = start_twistd(config, tmp_path)
    line = process.output.wait_for("WebSocket gateway on ws://")
    url = re.search(r"ws://\S+/", line).group(0)
    assert "browser pages allowed from: http://127.0.0.1:" in line
    process.output.wait_for("actor provider joined")
    yield process, url, connection
    stop(process)
    assert process.returncode in (0, -signal.SIGTERM)


def gateway_client(*args, cwd):
    return subprocess.run([sys.executable, "gateway_client.py", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def test_the_example_client_calls_through_a_twistd_networks_gateway(example_network, tmp_path):
    """`python gateway_client.py math add ...` against twistd's gateway prints 99."""
    process, url, connection = example_network
    done = gateway_client("math", "add", '{"a": 50, "b": 49}', "--url", url,
                          "--token", "t0ken", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": 99}


def test_the_gateway_and_the_cli_print_the_same_error_line(example_network, tmp_path):
    """An unknown service fails with the same line through the gateway as from
    `actornet call`; a wrong token is refused with 401 and the network keeps serving."""
    process, url, connection = example_network
    through_gateway = gateway_client("nope", "add", "--url", url, "--token", "t0ken",
                                     cwd=tmp_path)
    from_cli = subprocess.run([str(BIN / "actornet"), "call", "nope", "add",
                               "--connection-file", str(connection)],
                              capture_output=True, text=True, timeout=30)
    assert through_gateway.returncode == from_cli.returncode == 1
    assert through_gateway.stderr.startswith("actornet: unknown_service: ")
    assert through_gateway.stderr == from_cli.stderr
    refused = gateway_client("math", "add", "--url", url, "--token", "wrong", cwd=tmp_path)
    assert refused.returncode == 1
    assert "[401]: unauthorized: the dispatcher refused gateway-" in refused.stderr
    done = gateway_client("math", "mul", '{"a": 6, "b": 7}', "--url", url, "--token", "t0ken",
                          cwd=tmp_path)
    assert json.loads(done.stdout) == {"result": 42}


GATEWAY_MISTAKES = [
    ('listen = "tcp:0"\nmax_calls = 0', "gateway.max_calls: expected a positive integer, got 0"),
    ('listen = "tcp:0"\nmax_message_bytes = 10',
     "gateway.max_message_bytes: expected an integer from 1024 to 2147483648, got 10"),
    ('listen = "nonsense:0"', "gateway.listen: 'nonsense:0' is not a usable endpoint: "),
    ("max_calls = 5", "gateway.listen: is required"),
    ('listen = "tcp:0"\norigin = ["*"]', "gateway.origin: unknown key (a typo?)"),
    ('listen = "tcp:0"\norigins = ["127.0.0.1:5571"]',
     "gateway.origins[0]: expected scheme://host:port (e.g. http://127.0.0.1:5571), got "
     "'127.0.0.1:5571'"),
    ('listen = "tcp:0"\ntoken = "n3twork"', "gateway.token: the same as dispatcher.token"),
]


@pytest.mark.parametrize(("table", "problem"), GATEWAY_MISTAKES)
def test_a_bad_gateway_table_is_a_config_error_naming_the_key(tmp_path, table, problem):
    """Each mistake in [gateway] is one ConfigError naming the file and the key."""
    path = tmp_path / "net.toml"
    path.write_text(f'[dispatcher]\nlisten = "tcp:0"\ntoken = "n3twork"\n\n[gateway]\n{table}\n')
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert str(error.value).startswith(f"{path}: {problem}")


def test_a_gateway_needs_a_dispatcher_and_with_identities_a_shared_token(tmp_path):
    """[gateway] beside [join] is refused; a gateway token over identities needs the
    network's shared token to connect with."""
    path = tmp_path / "net.toml"
    path.write_text('[join]\nconnect = "tcp:host=h:port=1"\n[[actor]]\nclass = '
                    '"actornet.actors.keepalive:Keepalive"\n[gateway]\nlisten = "tcp:0"\n')
    with pytest.raises(config.ConfigError, match="belongs in the config with the "
                                                  r"\[dispatcher\] table"):
        config.load(path)
    path.write_text('[dispatcher]\nlisten = "tcp:0"\n[identities.web]\ntoken = "w"\n'
                    '[gateway]\nlisten = "tcp:0"\ntoken = "g"\n')
    with pytest.raises(config.ConfigError, match="gateway.token: with \\[identities\\], the "
                                                  "gateway connects with the shared"):
        config.load(path)
