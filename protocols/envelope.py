"""The envelope: the routing part at the front of every frame, and its wire form.

The envelope is kept apart from the body so the dispatcher can route a message
by reading only the envelope and pass the body's bytes on untouched.  In
memory an envelope is a plain dict (an object per message would cost every
hop); :func:`encode` and :func:`decode` are its only way to and from bytes.

On the wire the hot fields sit in a fixed binary header, read with one
``struct`` call, and only the rarely used keys are CBOR: decoding a request's
envelope this way takes a third of the time a CBOR map took (0.75 µs against
2.25 µs with its type checks, ``bench/README.md``), and the header's types
need no checking::

    u8 version (2) | u8 kind | u8 flags | u8 hops | u16 status
    u64 id | u64 fwd | f64 ttl
    u16 len(svc) | u16 len(m) | u16 len(src) | u16 len(top) | u16 len(tgt)
    u32 len(route) | u32 len(rest)                    (48 bytes, big-endian)
    svc | m | src | top | tgt    (UTF-8 text; a length of 0xFFFF: absent)
    route: ``hops`` stamps, each a u16 length and the stamp's bytes
    rest: a CBOR map of the other keys (``err``, ``name``, ``svcs``, ``tok``,
          ``ka``, ``mf``); 0 bytes when there are none

``flags`` says which of ``id``, ``fwd``, ``ttl`` and ``st`` are present and
holds ``nr``, ``idem`` and whether ``tgt`` is a list (then CBOR) rather than text.

Keys (as the dict names them):
  ``k``    kind (:class:`~actornet.protocols.codes.Kind`), always present
  ``id``   message id, chosen by the sender, unique per connection
  ``src``  the sender's name, written by the dispatcher (never trusted from peers)
  ``svc``  service, ``m`` method, ``tgt`` target (``any``, ``all``, a name, a list)
  ``r``    the route: a list of stamps, each in its encoded form (bytes)
  ``st``   status (:class:`~actornet.protocols.codes.Status`) of an answer
  ``ttl``  seconds the asker will still wait; each hop re-computes it
  ``fwd``  the id of the request whose answer this forwarded request will give
  ``nr``   no reply wanted (a ``tell``); ``idem``: safe to run twice
  ``top``  an event's topic; ``err``: ``[type, message]`` of a failed answer
  ``name``, ``svcs``, ``tok``: a REGISTER's name, services and token
  ``ka``   keepalive interval in seconds, announced in READY
  ``mf``   the largest frame the dispatcher accepts, announced in READY
"""

import struct

from actornet.protocols import codec
from actornet.protocols.codes import Kind

VERSION = 2
HEADER = struct.Struct(">BBBBHQQdHHHHHII")
_STAMP_LENGTH = struct.Struct(">H")
ABSENT = 0xFFFF
MAX_TEXT = ABSENT - 1

NR, IDEM, TGT_LIST, HAS_ID, HAS_FWD, HAS_TTL, HAS_ST = 1, 2, 4, 8, 16, 32, 64
_KNOWN_FLAGS = 127

_TEXT_KEYS = ("svc", "m", "src", "top")
_REST_TYPES = {
    "err": frozenset({list}),
    "name": frozenset({str}),
    "svcs": frozenset({list}),
    "tok": frozenset({str}),
    "ka": frozenset({int, float}),
    "mf": frozenset({int}),
}
_KEYS = frozenset({"k", "id", "fwd", "ttl", "st", "nr", "idem", "tgt", "r", *_TEXT_KEYS,
                   *_REST_TYPES})
_KINDS = {kind.value: kind for kind in Kind}
_REQUIRED = {
    Kind.REGISTER: ("name",),
    Kind.REFUSED: ("st",),
    Kind.ERROR: ("st",),
    Kind.REQUEST: ("id", "svc", "m"),
    Kind.RESPONSE: ("id", "st"),
    Kind.EVENT: ("top",),
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


def encode(envelope):
    """The wire form of ``envelope`` (a dict of the keys above).

    @raise TypeError: a key this wire does not carry, or a value of the wrong
        type or range (an id over 64 bits, a text over 65,534 bytes).
    """
    get = envelope.get
    flags = 0
    consumed = 1
    rid = get("id")
    if rid is None:
        rid = 0
    else:
        flags |= HAS_ID
        consumed += 1
    fwd = get("fwd")
    if fwd is None:
        fwd = 0
    else:
        flags |= HAS_FWD
        consumed += 1
    ttl = get("ttl")
    if ttl is None:
        ttl = 0.0
    else:
        flags |= HAS_TTL
        consumed += 1
    status = get("st")
    if status is None:
        status = 0
    else:
        flags |= HAS_ST
        consumed += 1
    for key, flag in (("nr", NR), ("idem", IDEM)):
        value = get(key)
        if value is not None:
            consumed += 1
            if value:
                flags |= flag
    parts = [b""]
    lengths = []
    for key in _TEXT_KEYS:
        text = get(key)
        if text is None:
            lengths.append(ABSENT)
        else:
            consumed += 1
            data = _utf8(key, text)
            parts.append(data)
            lengths.append(len(data))
    target = get("tgt")
    if target is None:
        lengths.append(ABSENT)
    else:
        consumed += 1
        if type(target) is str:
            data = _utf8("tgt", target)
        elif type(target) is not list:
            raise TypeError(f"envelope key 'tgt' is text or a list, not "
                            f"{type(target).__name__}")
        else:
            flags |= TGT_LIST
            data = codec.encode(target)
            if len(data) > MAX_TEXT:
                raise TypeError(f"envelope key 'tgt' is over {MAX_TEXT} bytes")
        parts.append(data)
        lengths.append(len(data))
    route = get("r")
    route_length = hops = 0
    if route is not None:
        consumed += 1
        hops = len(route)
        if hops > 255:
            raise TypeError(f"a route of {hops} stamps is over 255")
        pack = _STAMP_LENGTH.pack
        try:
            for stamp in route:
                parts += (pack(len(stamp)), stamp)
                route_length += 2 + len(stamp)
        except (struct.error, TypeError) as e:
            raise TypeError(f"envelope key 'r' holds a stamp that is not bytes under "
                            f"64 KiB: {e}") from None
    rest_length = 0
    if len(envelope) > consumed:
        unknown = envelope.keys() - _KEYS
        if unknown:
            raise TypeError(f"unknown envelope key {sorted(unknown)[0]!r}")
        data = codec.encode({key: value for key, value in envelope.items()
                             if key in _REST_TYPES})
        parts.append(data)
        rest_length = len(data)
    try:
        parts[0] = HEADER.pack(VERSION, envelope["k"], flags, hops, status, rid, fwd, ttl,
                               *lengths, route_length, rest_length)
    except KeyError:
        raise TypeError("an envelope needs its kind 'k'") from None
    except struct.error as e:
        raise TypeError(f"cannot encode envelope: {e}") from None
    return b"".join(parts)


def _utf8(key, text):
    if type(text) is not str:
        raise TypeError(f"envelope key {key!r} is text, not {type(text).__name__}")
    data = text.encode()
    if len(data) > MAX_TEXT:
        raise TypeError(f"envelope key {key!r} is over {MAX_TEXT} bytes")
    return data


def decode(data):
    """The envelope (a dict, ``k`` a :class:`Kind`) in ``data``, checked.

    @raise MalformedEnvelope: naming the first part that is missing, unknown,
        inconsistent or of the wrong type.
    """
    if len(data) < HEADER.size:
        if data[:1] and 0xA0 <= data[0] <= 0xBF:
            raise MalformedEnvelope("a CBOR map envelope: the peer speaks an older actornet "
                                    "wire (version 1)")
        raise MalformedEnvelope(f"an envelope of {len(data)} bytes is shorter than its "
                                f"{HEADER.size}-byte header")
    (version, kind, flags, hops, status, rid, fwd, ttl, svc_length, method_length, src_length,
     topic_length, target_length, route_length, rest_length) = HEADER.unpack_from(data)
    if version != VERSION:
        if 0xA0 <= version <= 0xBF:
            raise MalformedEnvelope("a CBOR map envelope: the peer speaks an older actornet "
                                    "wire (version 1)")
        raise MalformedEnvelope(f"envelope version {version}; this end speaks {VERSION}")
    envelope = {"k": kind}
    if flags & HAS_ID:
        envelope["id"] = rid
    kind = _KINDS.get(kind)
    if kind is None:
        raise MalformedEnvelope(f"unknown message kind {envelope['k']}")
    envelope["k"] = kind
    if flags & NR:
        envelope["nr"] = True
    if flags & ~_KNOWN_FLAGS:
        _malformed(envelope, f"unknown envelope flags {flags:#04x}")
    if flags & HAS_FWD:
        envelope["fwd"] = fwd
    if flags & HAS_TTL:
        envelope["ttl"] = ttl
    if flags & HAS_ST:
        envelope["st"] = status
    if flags & IDEM:
        envelope["idem"] = True
    texts = sum(length for length in (svc_length, method_length, src_length, topic_length,
                                      target_length) if length != ABSENT)
    if HEADER.size + texts + route_length + rest_length != len(data):
        _malformed(envelope, f"the envelope's parts do not add up to its {len(data)} bytes")
    offset = HEADER.size
    for key, length in (("svc", svc_length), ("m", method_length), ("src", src_length),
                        ("top", topic_length)):
        if length != ABSENT:
            try:
                envelope[key] = data[offset:offset + length].decode()
            except UnicodeDecodeError:
                _malformed(envelope, f"envelope key {key!r} is not UTF-8 text")
            offset += length
    if target_length != ABSENT:
        _target(envelope, data[offset:offset + target_length], flags)
        offset += target_length
    if hops or route_length:
        envelope["r"] = _route(envelope, data, offset, route_length, hops)
        offset += route_length
    if rest_length:
        _rest(envelope, data[offset:offset + rest_length])
    for key in _REQUIRED.get(kind, ()):
        if key not in envelope:
            _malformed(envelope, f"a {kind.name} envelope needs the key {key!r}")
    if flags & HAS_ST and not 100 <= status <= 599:
        _malformed(envelope, f"status {status} is not a code from 100 to 599")
    return envelope


def _target(envelope, data, flags):
    if not flags & TGT_LIST:
        try:
            envelope["tgt"] = data.decode()
        except UnicodeDecodeError:
            _malformed(envelope, "envelope key 'tgt' is not UTF-8 text")
        return
    try:
        target = codec.decode(data)
    except ValueError as e:
        _malformed(envelope, f"envelope key 'tgt' is not a CBOR list: {e}")
    if type(target) is not list:
        _malformed(envelope, f"envelope key 'tgt' has the wrong type {type(target).__name__}")
    envelope["tgt"] = target


def _route(envelope, data, offset, length, hops):
    """The route's stamps (bytes each), checked against their count and length."""
    route = []
    end = offset + length
    unpack = _STAMP_LENGTH.unpack_from
    while offset < end:
        if offset + 2 > end:
            _malformed(envelope, "the route's last stamp is cut short")
        (size,) = unpack(data, offset)
        offset += 2
        if offset + size > end:
            _malformed(envelope, "the route's last stamp is cut short")
        route.append(data[offset:offset + size])
        offset += size
    if len(route) != hops:
        _malformed(envelope, f"the route holds {len(route)} stamps, its header says {hops}")
    return route


def _rest(envelope, data):
    """The CBOR map of the rarely used keys, each of its own type."""
    try:
        rest = codec.decode(data)
    except ValueError as e:
        _malformed(envelope, f"the envelope's CBOR part: {e}")
    if type(rest) is not dict:
        _malformed(envelope, "the envelope's CBOR part is not a map")
    for key, value in rest.items():
        types = _REST_TYPES.get(key)
        if types is None:
            _malformed(envelope, f"unknown envelope key {key!r}")
        if type(value) not in types:
            _malformed(envelope, f"envelope key {key!r} has the wrong type "
                                 f"{type(value).__name__}")
    error = rest.get("err")
    if error is not None and (len(error) != 2 or type(error[0]) is not str
                              or type(error[1]) is not str):
        _malformed(envelope, "err is [type, message], both text")
    envelope.update(rest)


def _malformed(envelope, message):
    """Raise, saying which request or answer (if any) the fault belongs to."""
    kind = envelope.get("k")
    message_id = envelope.get("id")
    if message_id == 0:
        message_id = None
    if kind == Kind.RESPONSE:
        raise MalformedEnvelope(message, answer_id=message_id)
    if kind != Kind.REQUEST or "id" not in envelope:
        raise MalformedEnvelope(message)
    raise MalformedEnvelope(message, 0 if envelope.get("nr") is True else envelope["id"])

