"""Length-prefixed frames with a separate envelope and body.

A frame on the wire::

    u32 N | u32 E | E bytes of envelope (CBOR) | N - 4 - E bytes of body (CBOR)

Both lengths are big-endian.  Because the envelope's length is explicit, a
receiver can hand the body's bytes on without decoding them.

Twisted's ``Int32StringReceiver`` re-concatenates its whole buffer on every
chunk, which is quadratic for a megabyte frame arriving in 64 KiB reads; this
receiver keeps chunks in a list and joins them once per frame.
"""

import struct

from twisted.internet.protocol import Protocol

from actornet.protocols import codec

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
HEADROOM = 4096
"""Bytes a hop may add to a frame it passes on (its stamp, ids, deadline, sender):
senders keep this far below the limit, so a frame never grows past it."""


def message_limit(max_frame):
    """The largest frame a sender may send when frames may be ``max_frame`` bytes:
    the headroom is 4 KiB, or an eighth of a (small, test-sized) limit."""
    return max_frame - min(HEADROOM, max_frame // 8)
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">II")


class FrameError(ValueError):
    """A frame's own lengths are inconsistent."""


LARGE = 64 * 1024


class BodyParts:
    """A large body as the pieces it arrived in, so it can be passed on without
    being joined: ``len()`` is its size, ``bytes()`` joins it (one copy)."""

    __slots__ = ("parts", "size")

    def __init__(self, parts):
        self.parts = parts
        self.size = sum(len(part) for part in parts)

    def __len__(self):
        return self.size

    def __bytes__(self):
        return b"".join(self.parts)


def frame_parts(envelope_bytes, body=b""):
    """The buffers that make up one frame, ready for ``writeSequence``.

    Twisted's transports take only ``bytes``: a :class:`BodyParts` body goes
    out as its pieces, any other bytes-like body is copied into one.
    """
    header = _HEADER.pack(4 + len(envelope_bytes) + len(body), len(envelope_bytes))
    if type(body) is BodyParts:
        return [header, envelope_bytes, *body.parts]
    if type(body) is not bytes:
        body = bytes(body)
    return [header, envelope_bytes, body]


def frame_size(parts):
    """The bytes of a frame made by :func:`frame_parts`, read from its header."""
    return 4 + _U32.unpack_from(parts[0])[0]


def no_delay(transport):
    """Turn Nagle's algorithm off where the transport has it (TCP): a request
    and its answer are small frames that must not wait 40 ms for an ACK."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        try:
            set_no_delay(True)
        except OSError:
            pass


def encode_frame(envelope, body=b""):
    """One whole frame as bytes (for tests and tools, not the hot path)."""
    return b"".join(frame_parts(codec.encode(envelope), body))


class Cork:
    """Frames written while reads are being handled wait here, and each
    connection's go out in one ``writeSequence`` once the read is done.

    Under load one read holds many frames and each makes an answer or a
    forward; Twisted's write path (its checks, buffer bookkeeping, producer
    checks, the writer registration) then runs once per connection per read
    instead of once per frame.  Outside a read, frames are written at once.
    One cork may serve many connections (the dispatcher's does).
    """

    __slots__ = ("depth", "waiting")

    def __init__(self):
        self.depth = 0
        self.waiting = {}

    def write(self, protocol, parts):
        """Write ``parts`` (one frame) to ``protocol``'s transport, now or after the read."""
        if not self.depth:
            protocol.transport.writeSequence(parts)
            return
        waiting = self.waiting.get(protocol)
        if waiting is None:
            self.waiting[protocol] = list(parts)
        else:
            waiting += parts

    def flush(self):
        """Write what waits, once the read is done."""
        waiting, self.waiting = self.waiting, {}
        for protocol, parts in waiting.items():
            if protocol.transport is not None:
                protocol.transport.writeSequence(parts)

    def release(self, protocol):
        """Write what waits for ``protocol`` now: it is about to close."""
        parts = self.waiting.pop(protocol, None)
        if parts:
            protocol.transport.writeSequence(parts)


class FrameProtocol(Protocol):
    """Splits the byte stream into frames and hands each to :meth:`frameReceived`.

    Subclasses implement ``frameReceived(envelope_bytes, body)`` and may
    override :meth:`frameTooLarge` and :meth:`frameMalformed`.  ``body`` is
    ``bytes``, or :class:`BodyParts` for a frame over ``LARGE`` bytes that
    arrived in several reads (its body is never joined here).  Frames sent
    while a read is handled go out together after it (see :class:`Cork`).
    """

    max_frame = DEFAULT_MAX_FRAME

    def __init__(self, cork=None):
        self.cork = cork if cork is not None else Cork()
        self._chunks = []
        self._buffered = 0
        self._wanted = 4
        self._stopped = False
        self._producing = False

    def stopReading(self):
        """Ignore every byte after the current frame (the connection is closing)."""
        self._stopped = True
        self._chunks = []

    def dataReceived(self, data):
        cork = self.cork
        cork.depth += 1
        try:
            self._split(data)
        finally:
            cork.depth -= 1
            if not cork.depth:
                cork.flush()

    def _split(self, data):
        if self._stopped:
            return
        if self._chunks:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._wanted:
                return
            if self._wanted > LARGE:
                data = self._large_frame()
                if self._stopped:
                    return
            else:
                data = b"".join(self._chunks)
                self._chunks = []
        end = len(data)
        offset = 0
        while end - offset >= 4:
            (length,) = _U32.unpack_from(data, offset)
            if length > self.max_frame:
                self.stopReading()
                self.frameTooLarge(length)
                return
            stop = offset + 4 + length
            if stop > end:
                self._keep(data[offset:], 4 + length)
                return
            if length < 4:
                self.stopReading()
                self.frameMalformed(
                    FrameError(f"frame of {length} bytes is shorter than its header"))
                return
            (env_length,) = _U32.unpack_from(data, offset + 4)
            body_start = offset + 8 + env_length
            if body_start > stop:
                self.stopReading()
                self.frameMalformed(
                    FrameError(f"envelope length {env_length} exceeds frame length {length}"))
                return
            self.frameReceived(data[offset + 8:body_start], data[body_start:stop])
            if self._stopped:
                return
            offset = stop
        if offset < end:
            self._keep(data[offset:], 4)

    def _large_frame(self):
        """Deliver the frame spread over the kept chunks, its body unjoined;
        return the bytes that follow it."""
        chunks, self._chunks = self._chunks, []
        wanted = self._wanted
        excess = self._buffered - wanted
        rest = b""
        if excess:
            last = chunks[-1]
            rest = last[len(last) - excess:]
            chunks[-1] = last[:len(last) - excess]
        head = chunks[0]
        taken = 1
        while len(head) < 8 or len(head) < 8 + _U32.unpack_from(head, 4)[0]:
            if taken == len(chunks):
                break
            head += chunks[taken]
            taken += 1
        (env_length,) = _U32.unpack_from(head, 4)
        if 8 + env_length > wanted:
            self.stopReading()
            self.frameMalformed(
                FrameError(f"envelope length {env_length} exceeds frame length {wanted - 4}"))
            return b""
        body = [head[8 + env_length:], *chunks[taken:]]
        self.frameReceived(head[8:8 + env_length], BodyParts([p for p in body if p]))
        return rest

    def produceFor(self, producer):
        """Register ``producer`` (flow control) as the transport's streaming producer."""
        self.transport.registerProducer(producer, True)
        self._producing = True

    def hangUp(self):
        """Close after what is written has been sent.

        The producer registered with :meth:`produceFor` is unregistered first:
        Twisted does not close a connection while one is registered.
        """
        self.cork.release(self)
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    def connectionLost(self, reason):
        """Free what a frame cut short left buffered, at once (not at the next
        garbage collection: a peer may have sent megabytes of it)."""
        self._stopped = True
        self._chunks = []
        self._buffered = 0

    def _keep(self, rest, wanted):
        self._chunks = [rest]
        self._buffered = len(rest)
        self._wanted = wanted

    def sendFrame(self, envelope, body=b""):
        """Encode ``envelope`` and write it with ``body`` (bytes-like) as one frame."""
        self.cork.write(self, frame_parts(codec.encode(envelope), body))

    def frameReceived(self, envelope_bytes, body):
        raise NotImplementedError

    def frameTooLarge(self, length):
        """A frame announced more than ``max_frame`` bytes; by default, hang up."""
        self.transport.loseConnection()

    def frameMalformed(self, error):
        """A frame's lengths made no sense; by default, hang up."""
        self.transport.loseConnection()
