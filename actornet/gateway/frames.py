"""The gateway's two codecs, and every frame it sends.

``actornet.json`` carries each message as one JSON text frame; ``actornet.cbor``
as one CBOR binary frame, decoded with actornet's own hostile-input-safe
decoder.  Bytes in an answer reach a JSON client as ``{"$base64": "..."}`` and
times as ISO 8601 text (as ``actornet call`` prints them); a CBOR client gets
them as they are.

Frames the gateway sends (``op`` says which):

- ``welcome``: once, when the connection opens: ``name`` (the gateway's name
  for this connection in route stamps), ``protocol``, ``max_message_bytes``,
  ``max_calls``;
- ``result``: ``id``, ``status`` 200, ``result`` (the answer), ``route`` when
  asked;
- ``error``: ``id`` (null when the message had none), ``status`` (the number),
  ``error`` (its label), ``type`` (the handler's exception type when it raised,
  else actornet's error class), ``message`` (the line ``actornet`` prints);
- ``progress``: ``id``, ``data``, ``sender``;
- ``event``: ``topic``, ``data``, ``sender``.
"""

import json

import attrs

from actornet.protocols import codec
from actornet.protocols.errors import ActornetError
from actornet.shown import error_line, jsonable

from .operations import BadMessage

JSON = "actornet.json"
CBOR = "actornet.cbor"


@attrs.frozen
class Codec:
    """One subprotocol: ``binary`` says which kind of WebSocket frame it uses."""

    subprotocol: str
    binary: bool
    _decode: object
    _encode: object

    def decode(self, payload, is_binary):
        """The message in one WebSocket message.

        @raise BadMessage: the wrong kind of frame, or bytes that do not decode.
        """
        if is_binary != self.binary:
            wanted, got = ("binary", "text") if self.binary else ("text", "binary")
            raise BadMessage(f"{self.subprotocol} takes {wanted} frames, not {got} ones")
        return self._decode(payload)

    def encode(self, frame):
        """The payload of ``frame``.

        @raise TypeError: it holds a value the codec cannot write.
        """
        return self._encode(frame)


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _from_json(payload):
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise BadMessage("bad JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadMessage(f"bad JSON: {e}") from None


def _to_json(frame):
    try:
        return json.dumps(frame, default=jsonable, allow_nan=False).encode("utf-8")
    except ValueError as e:
        raise TypeError(str(e)) from e


def _from_cbor(payload):
    try:
        return codec.decode(payload)
    except codec.DecodeError as e:
        raise BadMessage(f"bad CBOR: {e}") from None


CODECS = {JSON: Codec(JSON, False, _from_json, _to_json),
          CBOR: Codec(CBOR, True, _from_cbor, codec.encode)}


def welcome(name, protocol, max_message_bytes, max_calls):
    return {"op": "welcome", "name": name, "protocol": protocol,
            "max_message_bytes": max_message_bytes, "max_calls": max_calls}


def result(id, answer, route=False):
    """The successful answer to call ``id`` (``answer`` a bag, or a plain dict
    for what the gateway itself did)."""
    frame = {"op": "result", "id": id, "status": 200, "result": dict(answer)}
    if route:
        frame["route"] = stamps(getattr(answer, "route", ()))
    return frame


def error(id, failure):
    """The error frame for ``failure`` (an exception) of call ``id``."""
    if isinstance(failure, ActornetError):
        status, label = failure.status, failure.status.label
        kind = failure.remote_type
        if kind is None or kind == label:
            kind = type(failure).__name__
    else:
        status, label, kind = 500, "failure", type(failure).__name__
    return {"op": "error", "id": id, "status": int(status), "error": label, "type": kind,
            "message": error_line(failure)}


def progress(id, bag):
    return {"op": "progress", "id": id, "data": dict(bag), "sender": bag.sender}


def event(topic, bag):
    return {"op": "event", "topic": topic, "data": dict(bag), "sender": bag.sender}


def stamps(route):
    """A route as a list of plain stamps (name, host, pid, conn, seq, arrived,
    departed, hop)."""
    return [stamp.as_dict() for stamp in route]
