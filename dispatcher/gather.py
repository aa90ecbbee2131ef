"""Answers to a request sent to ``all`` actors of a service, combined into one.

The combined body is a CBOR map keyed by actor name.  It is assembled from the
workers' body bytes as they are, without decoding them: each entry is
``{"status": 200, "result": <worker's body>}`` or
``{"status": <code>, "error": {"type": ..., "message": ...}}``.
"""

import struct

from actornet.protocols import codec
from actornet.protocols.codes import Status

_STATUS_KEY = codec.encode("status")
_RESULT_KEY = codec.encode("result")
_ERROR_KEY = codec.encode("error")
_EMPTY_MAP = codec.encode({})


def map_header(count):
    """The CBOR header of a map with ``count`` entries."""
    if count < 24:
        return bytes([0xA0 | count])
    if count < 0x100:
        return bytes([0xB8, count])
    if count < 0x10000:
        return b"\xb9" + struct.pack(">H", count)
    return b"\xba" + struct.pack(">I", count)


class Gather:
    """Collects one answer per actor; ``complete`` once every actor has answered.
    ``service`` and ``method`` are what was asked (the journal files the
    combined answer under them)."""

    def __init__(self, asker, asker_id, names, route, service=None, method=None):
        self.asker = asker
        self.asker_id = asker_id
        self.waiting = set(names)
        self.route = route
        self.service = service
        self.method = method
        self._entries = []

    @property
    def complete(self):
        return not self.waiting

    def add(self, name, status, body=b"", error=None):
        """Record ``name``'s answer; ``error`` is ``[type, message]`` for a failure.

        @return: whether it was recorded (False for a name already answered or
            never asked: the combined answer must be sent once).
        """
        if name not in self.waiting:
            return False
        self.waiting.discard(name)
        entry = [codec.encode(name), map_header(2), _STATUS_KEY, codec.encode(int(status))]
        if status == Status.SUCCESS:
            entry += [_RESULT_KEY, bytes(body) if len(body) else _EMPTY_MAP]
        else:
            kind, message = (error or [Status.parse(status).label, ""])[:2]
            entry += [_ERROR_KEY, codec.encode({"type": kind, "message": message})]
        self._entries.append(b"".join(entry))
        return True

    def body(self):
        """The combined answer's body bytes."""
        return map_header(len(self._entries)) + b"".join(self._entries)
