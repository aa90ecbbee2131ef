"""What a WebSocket client may ask the gateway, checked field by field.

A decoded message (a JSON object or a CBOR map) becomes one of the records
below, or a :class:`BadMessage` naming the problem precisely enough to fix it:
``call needs 'service' (text)``, ``call has no field 'servce' (a typo?)``,
``call's 'timeout' must be a positive number of seconds, got -1``.
"""

import math

import attrs

from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError


class BadMessage(ActornetError):
    """A message the gateway cannot act on; ``id`` is its call id when it had a
    usable one (so the client can tell which call failed), else None."""

    status = Status.MALFORMED_ENVELOPE

    def __init__(self, message, *, id=None):
        super().__init__(message)
        self.id = id


@attrs.frozen
class Call:
    """Ask ``service.method`` with ``data``; answers carry ``id``."""

    id: object
    service: str
    method: str
    data: dict
    target: object = "any"
    timeout: float = 30.0
    progress: bool = False
    route: bool = False


@attrs.frozen
class Cancel:
    """Stop call ``id``: the handler is told to stop; the call's answer is a
    ``cancelled`` error."""

    id: object


@attrs.frozen
class Publish:
    id: object
    topic: str
    data: dict


@attrs.frozen
class Subscribe:
    id: object
    topic: str


@attrs.frozen
class Unsubscribe:
    id: object
    topic: str


def _is_id(value):
    """Text, or an integer JavaScript can hold exactly."""
    if type(value) is str:
        return 0 < len(value) <= 200
    return type(value) is int and abs(value) < 2**53


def _is_text(value):
    return type(value) is str and 0 < len(value) <= 200


def _is_target(value):
    if type(value) is list:
        return 0 < len(value) and all(_is_text(name) for name in value)
    return _is_text(value)


def _is_timeout(value):
    return type(value) in (int, float) and math.isfinite(value) and value > 0


def _is_data(value):
    return isinstance(value, dict)


_ID = ("id", _is_id, "text or an integer")
_TOPIC = ("topic", _is_text, "text of 1 to 200 characters")
_DATA = ("data", _is_data, "an object (a map)")

# op: (record, required fields, optional fields with defaults); a field is
# (name, check, what it must be)
OPERATIONS = {
    "call": (Call,
             (_ID, ("service", _is_text, "text of 1 to 200 characters"),
              ("method", _is_text, "text of 1 to 200 characters")),
             ((_DATA, {}), (("target", _is_target, "'any', 'all', an actor's name or a "
                                                   "list of names"), "any"),
              (("timeout", _is_timeout, "a positive number of seconds"), 30.0),
              (("progress", lambda v: type(v) is bool, "true or false"), False),
              (("route", lambda v: type(v) is bool, "true or false"), False))),
    "cancel": (Cancel, (_ID,), ()),
    "publish": (Publish, (_TOPIC,), ((_ID, None), (_DATA, {}))),
    "subscribe": (Subscribe, (_TOPIC,), ((_ID, None),)),
    "unsubscribe": (Unsubscribe, (_TOPIC,), ((_ID, None),)),
}
NAMES = "call, cancel, publish, subscribe or unsubscribe"
KNOWN = {op: frozenset({"op", *(field[0] for field in required),
                        *(field[0] for field, _ in optional)})
         for op, (_, required, optional) in OPERATIONS.items()}
"""The fields each op may hold."""


def read_operation(message):
    """The operation ``message`` asks for.

    @raise BadMessage: it is not a map, names no known ``op``, lacks a required
        field, has a field of the wrong type or one no operation has.
    """
    if not isinstance(message, dict):
        raise BadMessage(f"a message is an object (a map) with an 'op', not "
                         f"{_kind(message)}")
    id = message.get("id") if _is_id(message.get("id")) else None
    op = message.get("op")
    if op is None:
        raise BadMessage(f"no 'op' field: say which operation ({NAMES})", id=id)
    if op not in OPERATIONS:
        raise BadMessage(f"unknown op {op!r}: expected {NAMES}", id=id)
    record, required, optional = OPERATIONS[op]
    known = KNOWN[op]
    for key in message:
        if key not in known:
            raise BadMessage(f"{op} has no field {key!r} (a typo?); it takes "
                             f"{', '.join(sorted(known - {'op'}))}", id=id)
    values = {}
    for name, check, what in required:
        if name not in message:
            raise BadMessage(f"{op} needs {name!r} ({what})", id=id)
        values[name] = _checked(op, message, name, check, what, id)
    for (name, check, what), default in optional:
        values[name] = (_checked(op, message, name, check, what, id)
                        if name in message else default)
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    return record(**values)


def _checked(op, message, name, check, what, id):
    value = message[name]
    if not check(value):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise BadMessage(f"{op}'s {name!r} must be {what}, got {shown}", id=id)
    return value


def _kind(value):
    names = {list: "a list", str: "text", int: "a number", float: "a number",
             bool: "true or false", type(None): "null", bytes: "bytes"}
    return names.get(type(value), type(value).__name__)
