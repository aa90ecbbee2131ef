"""Large bodies read in place: checked without being decoded, or decoded from
the pieces they arrived in.

A body of a megabyte is nearly always a map of a few fields, one of them a
long byte string (a file's chunk, an image).  Decoding it with
:func:`~actornet.protocols.codec.decode` copies that string four times (the
pieces joined, the two ends of the codec's wrapper added, the string taken
out of the buffer); here it is copied at most once, and not at all when the
body is only checked.

This reader accepts a strict subset of what ``codec.decode`` accepts: definite
lengths, integers, byte and text strings, arrays, maps keyed by text,
``false``, ``true``, ``null`` and floats, at most ``MAX_ITEMS`` items nested at
most ``MAX_DEPTH`` deep.  Anything else (a tag, an indefinite length, a
duplicate key, malformed or truncated bytes, too many items) raises
:class:`Unsure` and the caller falls back to ``codec.decode``, which then
accepts or refuses the body exactly as it always did.  So the item budget also
bounds what a check costs: a body of many small items is cheaper to decode in
cbor2's native code than to walk in Python.
"""

import struct

MAX_ITEMS = 64
MAX_DEPTH = 8

_FLOATS = {25: struct.Struct(">e"), 26: struct.Struct(">f"), 27: struct.Struct(">d")}
_SIMPLE = {20: False, 21: True, 22: None}


class Unsure(Exception):
    """The body is outside what this reader handles; ``codec.decode`` decides."""


def check(body):
    """Return if ``body`` (bytes or :class:`~actornet.protocols.framing.BodyParts`)
    is a CBOR map that ``codec.decode`` would decode.

    @raise Unsure: otherwise, or when this reader cannot tell.
    """
    _Reader(body, build=False).body()


def decode(body):
    """The map ``body`` holds, copying each byte string once.

    @raise Unsure: as :func:`check`.
    """
    return _Reader(body, build=True).body()


class _Reader:
    """A cursor over the pieces of one body."""

    __slots__ = ("parts", "index", "offset", "build", "items")

    def __init__(self, body, build):
        self.parts = [part for part in getattr(body, "parts", (body,)) if part]
        self.index = 0
        self.offset = 0
        self.build = build
        self.items = 0

    def body(self):
        if self._peek() >> 5 != 5:
            raise Unsure("a body is a map")
        value = self._item(0)
        if self.index < len(self.parts):
            raise Unsure("trailing bytes")
        return value

    def _peek(self):
        if self.index == len(self.parts):
            raise Unsure("truncated")
        return self.parts[self.index][self.offset]

    def _take(self, size):
        """The next ``size`` bytes, copied once (joined across pieces if needed)."""
        part = self.parts[self.index] if self.index < len(self.parts) else b""
        end = self.offset + size
        if end < len(part):
            data = part[self.offset:end]
            self.offset = end
            return data
        pieces = []
        while size:
            if self.index == len(self.parts):
                raise Unsure("truncated")
            part = self.parts[self.index]
            piece = memoryview(part)[self.offset:self.offset + size]
            pieces.append(piece)
            size -= len(piece)
            self.offset += len(piece)
            if self.offset == len(part):
                self.index += 1
                self.offset = 0
        return b"".join(pieces)

    def _skip(self, size):
        while size:
            if self.index == len(self.parts):
                raise Unsure("truncated")
            left = len(self.parts[self.index]) - self.offset
            if size < left:
                self.offset += size
                return
            size -= left
            self.index += 1
            self.offset = 0

    def _head(self):
        """``(major type, argument or additional info)`` of the next item."""
        self.items += 1
        if self.items > MAX_ITEMS:
            raise Unsure("too many items")
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 31
        if major == 7:
            return major, info
        if info < 24:
            return major, info
        if info > 27:
            raise Unsure("indefinite or reserved length")
        return major, int.from_bytes(self._take(1 << (info - 24)), "big")

    def _item(self, depth):
        major, argument = self._head()
        if major == 0:
            return argument
        if major == 1:
            return -1 - argument
        if major == 2:
            if self.build:
                return self._take(argument)
            return self._skip(argument)
        if major == 3:
            return self._text(argument)
        if depth == MAX_DEPTH or major == 6:
            raise Unsure("nested too deep, or a tag")
        if major == 4:
            values = [self._item(depth + 1) for _ in range(argument)]
            return values if self.build else None
        if major == 5:
            return self._map(argument, depth + 1)
        if argument in _SIMPLE:
            return _SIMPLE[argument]
        if argument in _FLOATS:
            return _FLOATS[argument].unpack(self._take(1 << (argument - 24)))[0]
        raise Unsure("a simple value other than false, true and null")

    def _text(self, size):
        try:
            return str(self._take(size), "utf-8")
        except UnicodeDecodeError as e:
            raise Unsure("text that is not UTF-8") from e

    def _map(self, count, depth):
        value = {}
        for _ in range(count):
            major, argument = self._head()
            if major != 3:
                raise Unsure("a key that is not text")
            key = self._text(argument)
            if key in value:
                raise Unsure("a duplicate key")
            value[key] = self._item(depth)
        return value
