"""CBOR encoding and a decoder that is safe on hostile input.

cbor2 understands many semantic tags, some of which build arbitrary objects
(regular expressions, MIME messages, shared references that make cycles).  A
network peer must not be able to make us compile a regex or build a cycle, so
only a short list of tags is accepted: date/times (0, 1) and big integers (2, 3).
Every other tag, known to cbor2 or not, is a decode error, and nesting deeper
than ``MAX_DEPTH`` is refused before it can exhaust the stack.
"""

import io
from datetime import UTC

import cbor2

SAFE_TAGS = frozenset({0, 1, 2, 3})
MAX_DEPTH = 32

# Every semantic tag cbor2 6 decodes by itself, other than the safe ones (a test
# scans the tag space so a new cbor2 release cannot add one unnoticed).
_BUILTIN_TAGS = (4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004,
                 43000, 55799)


class DecodeError(ValueError):
    """The bytes are not CBOR that actornet accepts; the message says why."""


def _refuser(tag):
    def refuse(*args):
        raise cbor2.CBORDecodeError(f"CBOR tag {tag} outside the safe set (0, 1, 2, 3)")
    return refuse


def _refuse_unknown(tag, immutable):
    raise cbor2.CBORDecodeError(f"CBOR tag {tag.tag} outside the safe set (0, 1, 2, 3)")


_REFUSALS = {tag: _refuser(tag) for tag in _BUILTIN_TAGS}
_DECODE_OPTIONS = dict(
    tag_hook=_refuse_unknown,
    semantic_decoders=_REFUSALS,
    max_depth=MAX_DEPTH,
    allow_duplicate_keys=False,
    strict_hashable_types=True,
)


_WRAPPED_OPTIONS = dict(_DECODE_OPTIONS, max_depth=MAX_DEPTH + 1)
_WRAP_AT_MOST = 4096


def encode(value):
    """Encode ``value`` as CBOR; naive datetimes are taken to be UTC.

    (No ``encoders=`` hook here: it makes cbor2's native encoder three times
    slower, and this runs for every envelope.)
    """
    try:
        return cbor2.dumps(value, timezone=UTC)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as e:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR: {e}") from e


def decode(data):
    """Decode one complete CBOR item; trailing bytes are an error.

    Every envelope and body is decoded here, so this is on the hot path: a
    small item is wrapped in an indefinite-length array closed by a sentinel
    (``null`` then the break byte) and decoded by one ``cbor2.loads`` call, 0.4
    µs quicker than a decoder on a stream whose position is checked afterwards.
    Any byte after the item changes what the wrapper decodes to (more items, an
    early break, an error), so trailing data is still refused.  A large item
    is read from a stream over its bytes instead: wrapping would copy them.

    @raise DecodeError: when the bytes are not one safe, well-formed CBOR item.
    """
    if len(data) > _WRAP_AT_MOST:
        value, end = decode_prefix(data)
        if end != len(data):
            raise DecodeError(f"{len(data) - end} bytes of trailing data after the CBOR item")
        return value
    try:
        items = cbor2.loads(b"\x9f" + bytes(data) + b"\xf6\xff", **_WRAPPED_OPTIONS)
    except RecursionError as e:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}") from e
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as e:
        raise DecodeError(_described(e, data)) from e
    if len(items) == 2 and items[1] is None:
        return items[0]
    value, end = decode_prefix(data)
    raise DecodeError(f"{len(data) - end} bytes of trailing data after the CBOR item")


def _described(error, data):
    """The message of a failed wrapped decode, as the plain decode would say it."""
    try:
        decode_prefix(data)
    except DecodeError as e:
        return str(e)
    return str(error) or type(error).__name__


def decode_prefix(data):
    """Decode the CBOR item at the start of ``data``.

    @return: ``(value, end)`` where ``end`` is the offset just past the item.
    @raise DecodeError: when the item is malformed, truncated or unsafe.
    """
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream, **_DECODE_OPTIONS).decode()
    except RecursionError as e:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}") from e
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as e:
        raise DecodeError(str(e) or type(e).__name__) from e
    return value, stream.tell()
