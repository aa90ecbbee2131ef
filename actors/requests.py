"""Requests as an actor sees them: the record kept while one is handled, the
FORWARDED marker, and reading the bag or the error a frame carries.

Shared by the session (which sends and answers) and the handler table (which
calls handlers); it knows the wire's shapes but holds no state.
"""

from actornet.protocols import bodyscan, codec
from actornet.protocols.codes import Status
from actornet.protocols.databag import DataBag
from actornet.protocols.errors import ActornetError, ProtocolError, error_for
from actornet.protocols.framing import LARGE


class Forwarded:
    """Returned by ``forward()``: the answer will come from further down."""

    def __repr__(self):
        return "<forwarded>"


FORWARDED = Forwarded()


class Request:
    """What is kept about a request being handled; its bag holds it as ``bag._request``.

    One is made per request, so it has slots and no methods.  ``running`` is the
    Deferred of a handler still at work (cancelled when the asker cancels);
    ``cancelled`` says no answer is wanted any more.
    """

    __slots__ = ("rid", "route", "arrived", "tell", "service", "method", "sender", "forwarded",
                 "running", "cancelled")

    def __init__(self, rid, route, arrived, tell, service, method, sender):
        self.rid = rid
        self.route = route
        self.arrived = arrived
        self.tell = tell
        self.service = service
        self.method = method
        self.sender = sender
        self.forwarded = False
        self.running = None
        self.cancelled = False


def bag_of(body, route, sender):
    """The :class:`DataBag` of a received body.

    A body over ``LARGE`` bytes that :func:`~actornet.protocols.bodyscan.check`
    accepts is only checked, in place, and left to be decoded when the bag is
    first read (an :class:`~actornet.protocols.databag.UnreadBag`): a handler
    that passes it on unread costs no copy of it at all.  Every other body is
    decoded here, as are small ones (decoding them costs less than deciding
    whether to), so a malformed body of any size is refused at once.

    @raise ActornetError: MALFORMED_BODY when the body is not a CBOR map.
    """
    if len(body) > LARGE:
        try:
            bodyscan.check(body)
        except bodyscan.Unsure:
            pass
        else:
            return DataBag.unread(body, route, sender)
    try:
        data = codec.decode(body if type(body) is bytes else bytes(body)) if body else {}
    except ValueError as e:
        raise ActornetError(f"malformed body: {e}", status=Status.MALFORMED_BODY) from e
    if type(data) is not dict:
        raise ActornetError(f"a body is a map, not {type(data).__name__}",
                            status=Status.MALFORMED_BODY)
    return DataBag.received(data, route, sender)


def target_of(target):
    """A request's target as the wire carries it (a name or a list of names).

    @raise ProtocolError: for anything else, before it can reach the dispatcher.
    """
    if type(target) is str:
        return target
    if isinstance(target, (list, tuple)):
        return list(target)
    raise ProtocolError(f"a target is any, all, a name or a list of names, not {target!r}")


def not_text(service, method):
    """The error for a request whose service or method is not text."""
    return ProtocolError(f"a request's service and method are text, not "
                         f"{type(service).__name__} and {type(method).__name__}")


def error_of(envelope):
    """The :class:`ActornetError` a failed answer (or ERROR frame) carries.

    Never raises, whatever ``err`` holds: an ``err`` missing its type or
    message gets the status's label or "no detail" in its place (raising here
    would leave the ask it answers pending forever).
    """
    status = envelope.get("st", Status.FAILURE)
    err = envelope.get("err") or []
    kind = err[0] if len(err) > 0 else Status.parse(status).label
    message = err[1] if len(err) > 1 else "no detail"
    return error_for(status, message, remote_type=kind)
