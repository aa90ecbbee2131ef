"""The gateway's parts with plain values: operations, admission, one connection's
bookkeeping over a recording client (no sockets)."""

import pytest
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, succeed

from actornet.gateway.admission import (
    chosen_codec,
    origins_of,
    presented_token,
    token_to_connect_with,
)
from actornet.gateway.connection import GatewayConnection
from actornet.gateway.operations import Call, Publish, Subscribe, Unsubscribe, read_operation
from actornet.protocols.databag import DataBag


def request(params=None, headers=None):
    return ConnectionRequest("tcp:127.0.0.1:1", headers or {}, "127.0.0.1", "/", params or {},
                             13, None, [], [])


class RecordingClient:
    """Answers each ask with a Deferred the test fires; records the rest."""

    name = "gateway-test-1"

    def __init__(self):
        self.asks = {}
        self.subscribed = []
        self.published = []

    def ask(self, service, method, data, **options):
        asked = Deferred()
        self.asks[(service, method)] = (asked, options)
        return asked

    def publish(self, topic, data):
        self.published.append((topic, data))
        return True

    def subscribe(self, topic, callback):
        self.subscribed.append((topic, callback))

    def unsubscribe(self, topic, callback):
        self.subscribed.remove((topic, callback))

    def close(self):
        return succeed(None)


def test_a_call_gets_its_defaults_and_a_float_timeout():
    """Only id, service and method are required."""
    assert read_operation({"op": "call", "id": "a", "service": "s", "method": "m",
                           "timeout": 2}) == Call("a", "s", "m", {}, "any", 2.0, False, False)
    assert read_operation({"op": "subscribe", "topic": "t"}) == Subscribe(None, "t")
    assert read_operation({"op": "publish", "topic": "t", "id": 3, "data": {"x": 1}}) == (
        Publish(3, "t", {"x": 1}))


@pytest.mark.parametrize(("message", "problem"), [
    ({"op": "call", "id": True, "service": "s", "method": "m"},
     "call's 'id' must be text or an integer, got True"),
    ({"op": "call", "id": 1, "service": "s", "method": "m", "target": []},
     "call's 'target' must be 'any', 'all', an actor's name or a list of names, got []"),
    ({"op": "call", "id": 1, "service": "s", "method": "m", "data": [1]},
     "call's 'data' must be an object (a map), got [1]"),
    ({"op": "call", "id": 1, "service": "s", "method": "m", "progress": "yes"},
     "call's 'progress' must be true or false, got 'yes'"),
    ({"op": 5}, "unknown op 5: expected call, cancel, publish, subscribe or unsubscribe"),
    ("call", "a message is an object (a map) with an 'op', not text"),
])
def test_ill_typed_fields_are_named(message, problem):
    from actornet.gateway.operations import BadMessage

    with pytest.raises(BadMessage) as bad:
        read_operation(message)
    assert bad.value.message == problem


def test_json_is_chosen_when_no_subprotocol_is_offered_and_the_first_known_otherwise():
    assert chosen_codec([])[1] is None
    assert chosen_codec([])[0].subprotocol == "actornet.json"
    assert chosen_codec(["x", "actornet.cbor", "actornet.json"])[1] == "actornet.cbor"
    with pytest.raises(ConnectionDeny) as denied:
        chosen_codec(["wamp.2.json"])
    assert denied.value.code == 400


def test_a_token_comes_from_the_url_or_a_bearer_header_not_both():
    assert presented_token(request({"token": ["t"]})) == "t"
    assert presented_token(request(headers={"authorization": "Bearer  t2 "})) == "t2"
    assert presented_token(request()) is None
    for params, headers in (({"token": ["a"]}, {"authorization": "Bearer b"}),
                            ({}, {"authorization": "Basic dTpw"})):
        with pytest.raises(ConnectionDeny) as denied:
            presented_token(request(params, headers))
        assert denied.value.code == 400


def test_with_a_gateway_token_the_network_token_is_used_after_a_match():
    assert token_to_connect_with("mine", None, "net") == "mine"
    assert token_to_connect_with("g", "g", "net") == "net"
    for presented in ("x", None):
        with pytest.raises(ConnectionDeny) as denied:
            token_to_connect_with(presented, "g", "net")
        assert denied.value.code == 401


def test_the_default_origins_follow_the_http_listeners_address():
    from twisted.internet.address import IPv4Address, UNIXAddress

    assert origins_of(IPv4Address("TCP", "127.0.0.1", 5571)) == (
        "http://127.0.0.1:5571", "http://localhost:5571")
    assert origins_of(IPv4Address("TCP", "0.0.0.0", 80)) == ("http://*:80",)
    assert origins_of(IPv4Address("TCP", "10.0.0.5", 8080)) == ("http://10.0.0.5:8080",)
    assert origins_of(UNIXAddress(b"/run/actornet/http.sock")) == ()


def test_an_id_in_flight_cannot_be_reused_and_answers_free_it():
    """A second call with the id of one in flight is refused; once answered, the id
    may be used again, and nothing is sent after close."""
    sent = []
    client = RecordingClient()
    connection = GatewayConnection(client, sent.append, max_calls=5)
    call = Call(7, "math", "add", {"a": 1}, "any", 3.0, False, True)
    connection.received(call)
    assert client.asks[("math", "add")][1]["timeout"] == 3.0
    connection.received(call)
    assert sent.pop()["message"] == ("actornet: malformed_envelope: a call with id 7 is in "
                                     "flight already; give each call an id of its own")
    client.asks[("math", "add")][0].callback(DataBag({"result": 2}))
    assert sent.pop() == {"op": "result", "id": 7, "status": 200, "result": {"result": 2},
                          "route": []}
    connection.received(call)
    assert connection.calls.keys() == {7}
    connection.close()
    client.asks[("math", "add")][0].callback(DataBag({"result": 2}))
    assert sent == []


def test_subscribing_twice_subscribes_once_and_unsubscribe_forgets():
    sent = []
    client = RecordingClient()
    connection = GatewayConnection(client, sent.append, max_calls=1)
    connection.received(Subscribe("a", "t"))
    connection.received(Subscribe(None, "t"))
    assert len(client.subscribed) == 1
    client.subscribed[0][1](DataBag({"x": 1}, sender="someone"))
    assert sent == [{"op": "result", "id": "a", "status": 200, "result": {}},
                    {"op": "event", "topic": "t", "data": {"x": 1}, "sender": "someone"}]
    connection.received(Unsubscribe(None, "t"))
    assert client.subscribed == []
