"""The envelope: the small CBOR map at the front of every frame.

The envelope is kept apart from the body so the dispatcher can route a message
by decoding only the envelope and pass the body's bytes on untouched.  An
envelope is a plain dict (decoding into objects would cost the dispatcher on
every message); this module names its keys and checks their types.

Keys:
  ``k``    kind (:class:`~actornet.protocols.codes.Kind`), always present
  ``id``   message id, chosen by the sender, unique per connection (a PROGRESS
           or CANCEL names the request it is about)
  ``src``  the sender's name, written by the dispatcher (never trusted from peers)
  ``svc``  service, ``m`` method, ``tgt`` target (``any``, ``all``, a name, a list)
  ``r``    the route: a list of stamps in list form
  ``st``   status (:class:`~actornet.protocols.codes.Status`) of an answer
  ``ttl``  seconds the asker will still wait; each hop re-computes it
  ``fwd``  the id of the request whose answer this forwarded request will give
  ``nr``   no reply wanted (a ``tell``); ``idem``: safe to run twice
  ``top``  an event's topic; ``err``: ``[type, message]`` of a failed answer
  ``name``, ``svcs``, ``tok``: a REGISTER's name, services and token
  ``ka``   keepalive interval in seconds, announced in READY
  ``mf``   the largest frame the dispatcher accepts, announced in READY
"""

from actornet.protocols.codes import Kind, Status

# Exact types, so that ``True`` is not an int here; decoded CBOR yields plain
# ints, envelopes built in this process may hold the IntEnums themselves.
_TEXT = frozenset({str})
_INT = frozenset({int, Kind, Status})
_NUMBER = frozenset({int, float})
_BOOL = frozenset({bool})
_LIST = frozenset({list})
_TYPES = {
    "k": _INT,
    "id": _INT,
    "src": _TEXT,
    "svc": _TEXT,
    "m": _TEXT,
    "tgt": frozenset({str, list}),
    "r": _LIST,
    "st": _INT,
    "ttl": _NUMBER,
    "fwd": _INT,
    "nr": _BOOL,
    "idem": _BOOL,
    "top": _TEXT,
    "err": _LIST,
    "name": _TEXT,
    "svcs": _LIST,
    "tok": _TEXT,
    "ka": _NUMBER,
    "mf": _INT,
}
_KINDS = {kind.value: kind for kind in Kind}
_REQUIRED = {
    Kind.REGISTER: ("name",),
    Kind.REFUSED: ("st",),
    Kind.ERROR: ("st",),
    Kind.REQUEST: ("id", "svc", "m"),
    Kind.RESPONSE: ("id", "st"),
    Kind.EVENT: ("top",),
    Kind.PROGRESS: ("id",),
    Kind.CANCEL: ("id",),
    Kind.SUBSCRIBE: ("top",),
    Kind.UNSUBSCRIBE: ("top",),
}


class MalformedEnvelope(ValueError):
    """An envelope of the wrong shape.

    ``request_id`` is set when the envelope is a REQUEST whose ``id`` could be
    read (non-zero for an ask, 0 for a tell): the fault is that request's
    alone, and its sender can be answered instead of being hung up on.
    ``answer_id`` is set likewise for a RESPONSE: the request it answers fails.
    """

    def __init__(self, message, request_id=None, answer_id=None):
        super().__init__(message)
        self.request_id = request_id
        self.answer_id = answer_id


def check(envelope):
    """Check a decoded envelope's shape; return its :class:`Kind`.

    @raise MalformedEnvelope: naming the first key that is missing, unknown or
        of the wrong type.
    """
    if type(envelope) is not dict:
        raise MalformedEnvelope("the envelope is not a map")
    types = _TYPES
    try:
        for key, value in envelope.items():
            if type(value) not in types[key]:
                _malformed(envelope, f"envelope key {key!r} has the wrong type "
                                     f"{type(value).__name__}")
    except KeyError:
        unknown = next(key for key in envelope if key not in types)
        _malformed(envelope, f"unknown envelope key {unknown!r}")
    if "k" not in envelope:
        raise MalformedEnvelope("the envelope needs the key 'k' (its kind)")
    kind = _KINDS.get(envelope["k"])
    if kind is None:
        raise MalformedEnvelope(f"unknown message kind {envelope['k']!r}")
    for key in _REQUIRED.get(kind, ()):
        if key not in envelope:
            _malformed(envelope, f"a {kind.name} envelope needs the key {key!r}")
    if "err" in envelope or "st" in envelope:
        _check_outcome(envelope)
    return kind


def _check_outcome(envelope):
    """A status is an HTTP-like code and an error is ``[type, message]`` (both text):
    whoever reads them must never fail on a peer's malformed answer."""
    status = envelope.get("st", 200)
    if not 100 <= status <= 599:
        _malformed(envelope, f"status {status} is not a code from 100 to 599")
    error = envelope.get("err")
    if error is not None and (len(error) != 2 or type(error[0]) is not str
                              or type(error[1]) is not str):
        _malformed(envelope, "err is [type, message], both text")


def _malformed(envelope, message):
    """Raise, saying which request or answer (if any) the fault belongs to."""
    kind = envelope.get("k")
    message_id = envelope.get("id")
    if type(message_id) is not int or message_id == 0:
        message_id = None
    if kind == Kind.RESPONSE:
        raise MalformedEnvelope(message, answer_id=message_id)
    if kind != Kind.REQUEST or type(envelope.get("id")) is not int:
        raise MalformedEnvelope(message)
    raise MalformedEnvelope(message, 0 if envelope.get("nr") is True else envelope["id"])

