"""Hostile inputs for the fuzz tests: odd CBOR values, mutated envelopes and frames.

Every generator takes a *picker*, the one source of choices, so the same code
serves hypothesis (:class:`DrawPicker`: examples shrink to a minimal failing
input) and the network fuzzer (:class:`RandomPicker`: a seeded ``random.Random``
that can make thousands of frames quickly).  Mutations start from frames the
protocol's own constructors (:mod:`actornet.protocols.messages`) build, so most
inputs get past the framing and decoding and reach the dispatcher's logic.
"""

import math
import struct

from hypothesis import strategies as st

from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.framing import encode_frame
from actornet.protocols.stamp import stamp_bytes

ENVELOPE_KEYS = ("k", "id", "src", "svc", "m", "tgt", "r", "st", "ttl", "fwd", "nr", "idem",
                 "top", "err", "name", "svcs", "tok", "ka", "mf")
_HEADER = struct.Struct(">II")


class RandomPicker:
    """Choices from a seeded ``random.Random``."""

    def __init__(self, random):
        self.random = random

    def integer(self, low, high):
        return self.random.randint(low, high)

    def binary(self, max_size):
        return self.random.randbytes(self.random.randint(0, max_size))

    def choice(self, options):
        return options[self.random.randrange(len(options))]


class DrawPicker:
    """Choices drawn from hypothesis's ``st.data()``, so failures shrink."""

    def __init__(self, data):
        self.data = data

    def integer(self, low, high):
        return self.data.draw(st.integers(low, high))

    def binary(self, max_size):
        return self.data.draw(st.binary(max_size=max_size))

    def choice(self, options):
        return self.data.draw(st.sampled_from(options))


def odd_value(pick, depth=0):
    """A CBOR-encodable value a peer should not send: wrong types, extremes, nesting."""
    kind = pick.integer(0, 13 if depth < 3 else 9)
    if kind == 0:
        return None
    if kind == 1:
        return pick.choice((True, False))
    if kind == 2:
        return pick.integer(-3, 600)
    if kind == 3:
        return pick.choice((-(2**64), -1, 2**31, 2**32, 2**63, 2**64, 2**70))
    if kind == 4:
        return pick.choice((0.0, -0.0, 1.5, -1.0, 1e308, math.inf, -math.inf, math.nan))
    if kind == 5:
        return pick.choice(("", "svc", "echo", "any", "all", "mmi", "x" * 300, "\0", "é"))
    if kind == 6:
        return pick.binary(12)
    if kind == 7:
        return pick.choice(list(Status))
    if kind == 8:
        return pick.choice(list(Kind))
    if kind == 9:
        fields = ["s", "h", 1, 1, pick.integer(0, 9), 0.0, 0.0, pick.integer(0, 40)]
        if pick.integer(0, 1):
            fields[pick.integer(0, 7)] = pick.choice((2**1100, -(2**70), math.nan, None, "x"))
        return codec.encode(fields[:pick.choice((8, 8, 7))])
    if kind in (10, 11):
        return [odd_value(pick, depth + 1) for _ in range(pick.integer(0, 3))]
    if kind == 12:
        return {pick.choice(ENVELOPE_KEYS + ("zz",)): odd_value(pick, depth + 1)
                for _ in range(pick.integer(0, 3))}
    return [pick.choice(("x", "failure")), odd_value(pick, depth + 1)][:pick.integer(0, 2)]


def mutate_envelope(pick, envelope):
    """A copy of ``envelope`` with one to three keys dropped, added, or given a
    near miss of their value or any odd value."""
    envelope = dict(envelope)
    for _ in range(pick.integer(1, 3)):
        action = pick.integer(0, 3)
        if action <= 1 and envelope:
            key = pick.choice(sorted(envelope))
            if action == 0:
                envelope.pop(key)
            else:
                envelope[key] = near_miss(pick, envelope[key])
        elif action == 2 and envelope:
            envelope[pick.choice(sorted(envelope))] = odd_value(pick)
        else:
            envelope[pick.choice(ENVELOPE_KEYS)] = odd_value(pick)
    return envelope


def near_miss(pick, value):
    """A value of nearly the right shape: a list one item short or long, a number
    just off or at an extreme, a string emptied or doubled."""
    if type(value) is list:
        if pick.integer(0, 1):
            return value[:pick.integer(0, max(0, len(value) - 1))]
        return value + [odd_value(pick)]
    if type(value) is bool:
        return not value
    if isinstance(value, int):
        return pick.choice((0, -1, value + 1, value - 1, 2**63, 2**64, -(2**64), 2**70))
    if type(value) is float:
        return pick.choice((-1.0, math.nan, math.inf, 1e300, value * 2))
    if type(value) is str:
        return pick.choice(("", value * 2, value + "\0", value.upper()))
    return odd_value(pick)


def mutate_bytes(pick, data):
    """``data`` with one byte-level fault: a flipped byte, a cut, an insertion, or
    a frame header whose lengths lie."""
    action = pick.integer(0, 4)
    if action == 0 and data:
        at = pick.integer(0, len(data) - 1)
        return data[:at] + bytes([data[at] ^ pick.integer(1, 255)]) + data[at + 1:]
    if action == 1:
        return data[:pick.integer(0, len(data))]
    if action == 2:
        at = pick.integer(0, len(data))
        return data[:at] + pick.binary(8) + data[at:]
    if action == 3 and len(data) >= 8:
        length, env_length = _HEADER.unpack_from(data)
        lie = pick.choice((0, 1, 3, 4, length - 1, length + 1, env_length + 1, 2**31, 2**32 - 1))
        if pick.integer(0, 1):
            return _HEADER.pack(lie % 2**32, env_length) + data[8:]
        return _HEADER.pack(length, lie % 2**32) + data[8:]
    return data + pick.binary(16)


def valid_envelope(pick, service="svc", ids=(1, 2, 3)):
    """An envelope of any kind a peer may send, as the constructors build it."""
    route = [stamp_bytes("p", "h", 1, 1, 1, 0.0, 0.0, 1)][:pick.integer(0, 1)]
    rid = pick.choice(ids)
    kind = pick.integer(0, 10)
    if kind == 0:
        return messages.register(pick.choice(("p", "q", "fuzz")), [service], None)
    if kind == 1:
        return messages.request(rid, pick.choice((service, "mmi", "nosuch")),
                                pick.choice(("run", "show", "show_dispatcher")), route,
                                target=pick.choice(("any", "all", "w1", ["w1", "w2"])),
                                ttl=pick.choice((None, 0.0, 5.0, 1e9)),
                                idempotent=pick.choice((True, False)),
                                forwarding=pick.choice((None, rid)))
    if kind == 2:
        return messages.tell(service, "run", route, target=pick.choice(("any", "all")))
    if kind in (3, 4, 5):
        return valid_response(pick, rid, route)
    if kind == 6:
        return messages.event(pick.choice(("t", "actornet.actors")), route)
    if kind == 7:
        return messages.subscribe("t")
    if kind == 8:
        return messages.unsubscribe("t")
    if kind == 9:
        return messages.keepalive()
    return messages.disconnect()


def valid_response(pick, rid, route=None):
    """A RESPONSE to ``rid``: a success, or a failure with its ``err``."""
    status = pick.choice(list(Status))
    if status == Status.SUCCESS:
        return messages.response(rid, route)
    return messages.failure(rid, status, "it went wrong", route=route)


def mutated_frame(pick, envelope, body=b""):
    """``envelope`` and ``body`` as a frame, maybe with the envelope mutated, maybe
    with a byte-level fault (never both untouched unless ``pick`` says so)."""
    how = pick.integer(0, 3)
    if how in (1, 3):
        envelope = mutate_envelope(pick, envelope)
    frame = encode_frame(envelope, body)
    if how in (2, 3):
        frame = mutate_bytes(pick, frame)
    return frame


def random_cbor_frame(pick):
    """A well-framed frame whose envelope is any CBOR value (usually not an envelope)."""
    return encode_frame(odd_value(pick), pick.binary(8))


def body(pick):
    """A request or answer body: empty, a small map, or bytes that are not CBOR."""
    return pick.choice((b"", codec.encode({"n": 1}), b"\xff\xfe", codec.encode([1, 2])))


def envelopes_in(data):
    """The decoded envelopes of the whole frames in ``data`` (None where one does
    not decode)."""
    found, offset = [], 0
    while len(data) - offset >= 8:
        length, env_length = _HEADER.unpack_from(data, offset)
        if length < 4 or 8 + env_length > 4 + length or offset + 4 + length > len(data):
            break
        try:
            found.append(codec.decode(data[offset + 8:offset + 8 + env_length]))
        except ValueError:
            found.append(None)
        offset += 4 + length
    return found
