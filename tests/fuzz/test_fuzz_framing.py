"""Fuzzing the frame reader and the envelope decoder with hostile byte streams.

The reader is checked against a reference: a plain parse of the whole stream
at once, written from the wire format in :mod:`actornet.protocols.framing`.
Whatever the bytes and however they are split into reads, the reader must
deliver the same frames, then at most the one fault the reference finds, and
never raise; decoding and checking what it delivers may fail only with the
documented errors (``DecodeError``, ``MalformedEnvelope``, both ValueErrors).
"""

import struct

from fuzz_budget import examples, for_budget, fuzz_timeout, memory_peak_below
from fuzz_inputs import DrawPicker, mutate_bytes, mutated_frame, random_cbor_frame, valid_envelope
from hypothesis import given
from hypothesis import strategies as st

from actornet.protocols import codec, envelope
from actornet.protocols.framing import LARGE, FrameError, FrameProtocol, encode_frame

pytestmark = fuzz_timeout

_U32 = struct.Struct(">I")


class Recorder(FrameProtocol):
    """A frame reader that keeps what it delivers and decodes each envelope."""

    def __init__(self, max_frame):
        super().__init__()
        self.max_frame = max_frame
        self.frames = []
        self.fault = None

    def frameReceived(self, envelope_bytes, body):
        assert self.fault is None, "a frame was delivered after a fault"
        self.frames.append((bytes(envelope_bytes), bytes(body)))
        try:
            envelope.check(codec.decode(bytes(envelope_bytes)))
        except ValueError:
            pass

    def frameTooLarge(self, length):
        assert self.fault is None, "a second fault"
        self.fault = ("too large", length)

    def frameMalformed(self, error):
        assert self.fault is None, "a second fault"
        assert isinstance(error, FrameError)
        self.fault = ("malformed",)


def reference(data, max_frame):
    """``(frames, fault)`` of the whole stream parsed at once by the wire format."""
    frames, offset = [], 0
    while len(data) - offset >= 4:
        (length,) = _U32.unpack_from(data, offset)
        if length > max_frame:
            return frames, ("too large", length)
        stop = offset + 4 + length
        if stop > len(data):
            break
        if length < 4:
            return frames, ("malformed",)
        (env_length,) = _U32.unpack_from(data, offset + 4)
        if 8 + env_length > 4 + length:
            return frames, ("malformed",)
        frames.append((data[offset + 8:offset + 8 + env_length],
                       data[offset + 8 + env_length:stop]))
        offset = stop
    return frames, None


def read_in_pieces(data, cuts, max_frame):
    """Feed ``data`` to a fresh reader, cut at ``cuts``; check it against the reference."""
    reader = Recorder(max_frame)
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        reader.dataReceived(data[start:cut])
        start = cut
    expected_frames, expected_fault = reference(data, max_frame)
    assert reader.frames == expected_frames
    assert reader.fault == expected_fault


def cuts_in(data):
    return st.lists(st.integers(0, len(data)), max_size=12)


max_frames = st.sampled_from([16, 300, LARGE + 100, 16 * 1024 * 1024])


@examples(300)
@given(st.binary(max_size=300), max_frames, st.data())
def fuzz_random_bytes(data, max_frame, draw):
    read_in_pieces(data, draw.draw(cuts_in(data)), max_frame)


@examples(200)
@given(st.data(), max_frames)
def fuzz_mutated_frame_streams(draw, max_frame):
    pick = DrawPicker(draw)
    stream = b""
    for _ in range(pick.integer(1, 4)):
        size = draw.draw(st.sampled_from([0, 5, LARGE - 20, LARGE + 3, 2 * LARGE + 1]))
        frame = draw.draw(st.sampled_from(["valid", "mutated", "cbor"]))
        if frame == "cbor":
            stream += random_cbor_frame(pick)
        elif frame == "mutated":
            stream += mutated_frame(pick, valid_envelope(pick), b"b" * size)
        else:
            stream += encode_frame(valid_envelope(pick), b"b" * size)
    if pick.integer(0, 1):
        stream = mutate_bytes(pick, stream)
    read_in_pieces(stream, draw.draw(cuts_in(stream)), max_frame)


def test_random_bytes_split_anywhere_read_as_the_wire_format_says():
    """Random bytes, split into reads anywhere, give the reference's frames and
    fault, and nothing raises but the documented decode errors."""
    with memory_peak_below(32):
        for_budget(fuzz_random_bytes)


def test_mutated_valid_frames_read_as_the_wire_format_says():
    """Streams of valid, mutated and random-CBOR frames, small and over LARGE, with
    lying headers and cuts, give the reference's frames and fault, and nothing
    raises but the documented decode errors."""
    with memory_peak_below(32):
        for_budget(fuzz_mutated_frame_streams)
