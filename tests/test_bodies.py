"""Large bodies: checked in place, decoded on first read, and sent back untouched
when a handler returns the bag it got without reading it."""

import copy
import itertools
import json
import pickle

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_actor import frames, linked
from twisted.internet.task import Clock

from actornet import Actor, handler
from actornet.actors.requests import bag_of
from actornet.protocols import bodyscan, codec
from actornet.protocols.codes import Kind, Status
from actornet.protocols.databag import CONTENT_METHODS, DataBag, UnreadBag, as_body, unread_body
from actornet.protocols.errors import ActornetError
from actornet.protocols.framing import LARGE, BodyParts, encode_frame

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BLOB = bytes(range(256)) * (LARGE // 128)
DATA = {"blob": BLOB, "name": "chunk", "n": 7, "tags": ["a", "b"], "ok": True, "nothing": None}


def parts_of(data, *cuts):
    """``data`` as BodyParts cut at ``cuts``."""
    edges = [0, *cuts, len(data)]
    return BodyParts([data[a:b] for a, b in itertools.pairwise(edges) if b > a])


def unread(data=DATA):
    bag = bag_of(codec.encode(data), [], "asker")
    assert type(bag) is UnreadBag
    return bag


# -- the reader -------------------------------------------------------------------

leaves = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats()
          | st.text(max_size=8) | st.binary(max_size=40))
trees = st.recursive(
    leaves,
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5) | st.binary(max_size=2), kids,
                      max_size=3),
    max_leaves=10)
maps = st.dictionaries(st.text(max_size=4), trees, max_size=4)


def same(a, b):
    """Equal down to the last bit (NaN equal to itself, 0.0 not to -0.0)."""
    return codec.encode(a) == codec.encode(b)


@FAST
@given(maps, st.data())
def test_the_reader_decodes_what_codec_decodes_in_any_pieces(data, draw):
    """Every map the reader takes decodes as codec.decode decodes it, however it is cut."""
    body = codec.encode(data)
    cuts = sorted(draw.draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=4)))
    try:
        value = bodyscan.decode(parts_of(body, *cuts))
    except bodyscan.Unsure:
        return
    bodyscan.check(parts_of(body, *cuts))
    assert same(value, codec.decode(body))


@FAST
@given(maps, st.binary(min_size=1, max_size=3), st.integers(0, 10**6), st.booleans())
def test_the_reader_takes_nothing_codec_refuses(data, noise, where, replace):
    """Bytes changed anywhere: if the reader takes them, codec.decode gives the same map."""
    body = codec.encode(data)
    where %= len(body)
    body = body[:where] + noise + body[where + (len(noise) if replace else 0):]
    try:
        value = bodyscan.decode(body)
    except bodyscan.Unsure:
        return
    assert same(value, codec.decode(body))


@pytest.mark.parametrize("body", [
    codec.encode([1, 2]), codec.encode({"a": 1}) + b"\x00", codec.encode({"a": 1})[:-1],
    b"\xa2\x61a\x01\x61a\x02", b"\xa1\x61a\xc1\x00", b"\xa1\x61a\x62\xff\xfe",
    b"\xbf\x61a\x01\xff", b"\xa1\x61a\xf7", b"\xa1\x01\x01", b"\xa1\x41a\x01",
    codec.encode({"a": list(range(100))}),
    codec.encode({"a": [[[[[[[[[[1]]]]]]]]]]}), b"",
])
def test_the_reader_leaves_what_it_does_not_handle_to_the_codec(body):
    """Arrays, trailing or missing bytes, duplicate keys, tags, bad UTF-8, indefinite
    lengths, undefined, keys other than text, many items and deep nesting are all
    codec.decode's to judge."""
    with pytest.raises(bodyscan.Unsure):
        bodyscan.check(body)


def test_the_reader_accepts_non_minimal_lengths_as_the_codec_does():
    """A length written in more bytes than it needs reads as the same value."""
    body = b"\xa1\x78\x01a\x1b" + (5).to_bytes(8, "big")
    assert bodyscan.decode(body) == codec.decode(body) == {"a": 5}


# -- bag_of ---------------------------------------------------------------------------


def test_a_small_body_is_decoded_at_once():
    """Bodies up to LARGE bytes make plain bags, as before."""
    assert type(bag_of(codec.encode({"a": 1}), [], None)) is DataBag


def test_a_large_body_of_many_items_is_decoded_at_once():
    """Past the reader's item budget the codec decodes, eagerly."""
    bag = bag_of(codec.encode({"xs": list(range(LARGE))}), [], None)
    assert type(bag) is DataBag and len(bag["xs"]) == LARGE


@pytest.mark.parametrize("body", [
    codec.encode([BLOB]), codec.encode({"blob": BLOB}) + b"\x00",
    codec.encode({"blob": BLOB})[:-1], b"\xa1\x61a\xd8\x20" + codec.encode(BLOB.hex()),
    b"\xa1\x61a\x7a" + (2 * LARGE).to_bytes(4, "big") + b"\xff" * 2 * LARGE,
])
def test_a_malformed_large_body_is_refused_at_once(body):
    """A large body that is not a safe CBOR map is MALFORMED_BODY, read or not."""
    with pytest.raises(ActornetError) as raised:
        bag_of(parts_of(body, 100, LARGE), [], None)
    assert raised.value.status == Status.MALFORMED_BODY


# -- the unread bag -------------------------------------------------------------------

OPERATIONS = {
    "get": lambda b: b.get("name"),
    "getitem": lambda b: b["n"],
    "in": lambda b: "blob" in b,
    "len": len,
    "bool": bool,
    "iter": list,
    "reversed": lambda b: list(reversed(b)),
    "items": lambda b: list(b.items()),
    "keys": lambda b: list(b.keys()),
    "values": lambda b: list(b.values()),
    "eq": lambda b: b == DATA and DATA == b and not b != DATA,
    "copy": lambda b: b.copy(),
    "update": lambda b: b.update(n=8),
    "setdefault": lambda b: b.setdefault("n", 9),
    "pop": lambda b: b.pop("name"),
    "popitem": lambda b: b.popitem(),
    "setitem": lambda b: b.__setitem__("new", 1),
    "delitem": lambda b: b.__delitem__("ok"),
    "clear": lambda b: b.clear(),
    "or": lambda b: b | {"x": 1},
    "ror": lambda b: {"x": 1} | b,
    "ior": lambda b: b.__ior__({"x": 1}),
    "dict": dict,
    "splat": lambda b: {**b},
    "dict.update": lambda b: {}.update(b),
    "json": lambda b: json.loads(json.dumps(b, default=bytes.hex)),
    "cbor": lambda b: codec.decode(codec.encode(b)),
    "cbor nested": lambda b: codec.decode(codec.encode({"inner": b, "list": [b]})),
    "cbor2 dumps": lambda b: cbor2.loads(cbor2.dumps(b)),
    "as_body": as_body,
    "copy.copy": lambda b: dict(copy.copy(b)),
    "deepcopy": lambda b: dict(copy.deepcopy(b)),
    "pickle": lambda b: dict(pickle.loads(pickle.dumps(b))),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_unread_bag_does_what_a_dict_does(name):
    """Every way of reading or changing a bag gives what it gives on a plain dict,
    leaves the same contents behind, and leaves the bag decoded (no longer unread)."""
    operation = OPERATIONS[name]
    expected = dict(DATA)
    bag = unread()
    result, wanted = operation(bag), operation(expected)
    assert result == wanted
    assert unread_body(bag) is None and type(bag) is DataBag
    assert dict(bag) == expected and dict.__len__(bag) == len(expected)


def test_an_unread_bag_repr_shows_its_contents_and_hops():
    """repr decodes, as any read does."""
    bag = bag_of(codec.encode({"blob": BLOB[:LARGE + 1]}), [b"x"], None)
    assert repr(bag).startswith("DataBag({'blob': b'\\x00\\x01") and repr(bag).endswith("hops=1)")


def test_an_unread_bag_raises_missing_field_like_any_bag():
    """A missing field is still a MissingField naming what the bag has."""
    with pytest.raises(KeyError, match="it has: blob, n, name, nothing, ok, tags"):
        unread()["nope"]


def test_route_sender_and_hops_leave_a_bag_unread():
    """What the envelope carried never needs the body."""
    bag = bag_of(codec.encode(DATA), [], "asker")
    assert (bag.sender, bag.hops, bag.route, bag.key) == ("asker", 0, (), ("", 0))
    assert unread_body(bag) is not None


def test_every_dict_method_that_reads_contents_decodes_first():
    """A new dict method (a Python upgrade) must be listed, or this fails (copy and
    pickle go through object's ``__reduce_ex__``, also listed)."""
    untouched = {"__new__", "__init__", "__hash__", "__doc__", "__class_getitem__", "fromkeys",
                 "__getattribute__", "__lt__", "__le__", "__gt__", "__ge__"}
    assert set(vars(dict)) - untouched == set(CONTENT_METHODS) - {"__reduce__", "__reduce_ex__"}


def test_unread_body_is_the_body_as_it_came():
    """The very bytes or pieces, not a copy."""
    body = parts_of(codec.encode(DATA), 10, LARGE)
    assert unread_body(bag_of(body, [], None)) is body
    assert unread_body(DataBag(DATA)) is None and unread_body(DATA) is None


# -- an actor echoing, reading or changing a large bag --------------------------------


class Bags(Actor):
    @handler
    def echo(self, bag):
        return bag

    @handler
    def stamp(self, bag):
        bag["seen"] = True
        return bag

    @handler
    def grow(self, bag):
        bag["tags"].append("c")
        return bag

    @handler
    def wrap(self, bag):
        return {"inner": bag}


def answers(method, body, cuts=()):
    """The answers' (status, body bytes) to one request with ``body`` sent in reads cut
    at ``cuts`` (frame offsets)."""
    clock = Clock()
    link, transport = linked(Bags("bags", clock=clock), clock)
    frame = encode_frame({"k": Kind.REQUEST, "id": 1, "svc": "s", "m": method}, body)
    edges = [0, *cuts, len(frame)]
    for a, b in itertools.pairwise(edges):
        link.dataReceived(frame[a:b])
    return [(envelope["st"], answer) for envelope, answer in frames(transport)]


# The blob's length written in eight bytes: cbor2 would write it in four.
LOOSE = (b"\xa2\x64blob\x5b" + len(BLOB).to_bytes(8, "big") + BLOB
         + b"\x64tags" + codec.encode(["a", "b"]))


@pytest.mark.parametrize("cuts", [(), (100, 70000, 70001, 200000)])
def test_a_bag_returned_unread_goes_back_as_the_bytes_it_came_in(cuts):
    """No decode, no encode: even CBOR the codec would write otherwise comes back as is."""
    assert answers("echo", LOOSE, cuts) == [(Status.SUCCESS, LOOSE)]


@pytest.mark.parametrize("method, changed", [
    ("stamp", {"seen": True}), ("grow", {"tags": ["a", "b", "c"]})])
def test_a_bag_changed_before_it_is_returned_is_encoded_with_the_change(method, changed):
    """A write (to the bag, or to a value read from it) is never lost."""
    (status, body), = answers(method, LOOSE, (100, 70000))
    assert status == Status.SUCCESS
    assert codec.decode(body) == {"blob": BLOB, "tags": ["a", "b"]} | changed


def test_an_unread_bag_inside_an_answer_is_encoded_whole():
    """A bag nested in another value is decoded by the encoder, never sent empty."""
    (status, body), = answers("wrap", LOOSE, (100,))
    assert status == Status.SUCCESS
    assert codec.decode(body) == {"inner": {"blob": BLOB, "tags": ["a", "b"]}}


def test_a_malformed_large_request_is_answered_malformed_body():
    """As before: the asker hears MALFORMED_BODY, whatever the handler would do."""
    (status, _), = answers("echo", LOOSE + b"\x00", (100, 70000))
    assert status == Status.MALFORMED_BODY
