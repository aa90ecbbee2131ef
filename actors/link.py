"""An actor's connection to the dispatcher: registration, frames, keepalives.

The protocol only parses frames and keeps the link alive; what the frames mean
is the business of the :class:`~actornet.actors.session.Session` above it, which
the link hands every frame to (and tells when it is attached and detached).
Any frame from the dispatcher counts as a sign of life.  A keepalive is sent
only on a link that has been quiet for an interval, so a busy link carries no
extra traffic.
"""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from actornet.protocols import codec, messages
from actornet.protocols.codes import Kind, Status
from actornet.protocols.envelope import MalformedEnvelope, check
from actornet.protocols.errors import ActornetError, ProtocolError, error_for
from actornet.protocols.framing import (
    DEFAULT_MAX_FRAME,
    HEADROOM,
    FrameProtocol,
    frame_parts,
    message_limit,
    no_delay,
)
from actornet.protocols.liveness import DEFAULT_MULTIPLIER, Liveness


@attrs.frozen
class LinkSettings:
    """How an actor's links talk to the dispatcher (the config fills it).

    The keepalive interval is the dispatcher's, announced in READY; the
    multiplier is this end's own patience.
    """

    token: str | None = None
    keepalive_multiplier: int = DEFAULT_MULTIPLIER
    max_frame: int = DEFAULT_MAX_FRAME


DEFAULT_LINK = LinkSettings()


class ActorLink(FrameProtocol):
    """The actor's side of one connection to the dispatcher.

    It registers ``session.name`` with ``session.services``.  ``ready`` fires
    with this link once the dispatcher has accepted the registration, or fails
    with the dispatcher's reason (wrong token, name taken), a ``ProtocolError``
    when the peer sends bytes that are not frames (it is not a dispatcher), or
    the connection's loss.  A REFUSED frame is the dispatcher refusing the
    connection; an ERROR frame is a tell that failed, for the session to log
    (except before READY, where a dispatcher that predates REFUSED sends its
    refusals as ERROR).
    """

    log = Logger()

    def __init__(self, session, clock, settings=DEFAULT_LINK):
        super().__init__()
        self.session = session
        self.clock = clock
        self.settings = settings
        self.token = settings.token
        self.max_frame = settings.max_frame
        self.send_limit = message_limit(settings.max_frame)
        self.ready = Deferred()
        self.connection_id = None
        self.liveness = None
        self.last_seen = self.last_sent = clock.seconds()
        self._failure = None
        self._ticker = None
        self.congested = False

    def connectionMade(self):
        no_delay(self.transport)
        self.send(messages.register(self.session.name, self.session.services, self.token))

    def dataReceived(self, data):
        """Any bytes are a sign of life, a frame cut in many reads included."""
        self.last_seen = self.clock.seconds()
        super().dataReceived(data)

    def send(self, envelope, body=b""):
        """Write one frame; returns False if the link is closed.

        @raise ProtocolError: TOO_LARGE, before anything is written, for a frame
            over the limit (the dispatcher's, as READY announced it): the
            dispatcher would hang up on it, failing every other ask too.
        """
        if self.transport is None or self.transport.disconnecting:
            return False
        envelope_bytes = codec.encode(envelope)
        size = 4 + len(envelope_bytes) + len(body)
        if size > self.send_limit:
            raise ProtocolError(f"a frame of {size} bytes is over the limit of "
                                f"{self.send_limit} bytes", status=Status.TOO_LARGE)
        self.cork.write(self, frame_parts(envelope_bytes, body))
        self.last_sent = self.clock.seconds()
        return True

    def leave(self):
        """Say DISCONNECT and close, so the dispatcher logs a departure, not a loss."""
        self.send(messages.disconnect())
        self.hangUp()

    def frameReceived(self, envelope_bytes, body):
        now = self.last_seen
        try:
            envelope = codec.decode(envelope_bytes)
            kind = check(envelope)
        except MalformedEnvelope as e:
            if e.answer_id is not None and self.ready is None:
                self.session.malformed_answer(e.answer_id, e)
            else:
                self.frameMalformed(e)
            return
        except ValueError as e:
            self.frameMalformed(e)
            return
        if kind is Kind.READY:
            self._ready(envelope)
        elif kind is Kind.REFUSED or (kind is Kind.ERROR and self.ready is not None
                                      and not envelope.get("id")):
            self._refused(envelope)
        elif kind is not Kind.KEEPALIVE:
            self.session.received(kind, envelope, body, now)

    def _ready(self, envelope):
        self.connection_id = envelope.get("id")
        announced = envelope.get("mf", self.send_limit)
        self.send_limit = min(message_limit(self.settings.max_frame), announced)
        self.max_frame = max(self.max_frame, announced + HEADROOM)
        interval = envelope.get("ka")
        if interval:
            self.liveness = Liveness(interval, self.settings.keepalive_multiplier)
            self._ticker = self.clock.callLater(self.liveness.holdtime / 10, self._tick)
        self.produceFor(_OwnBackPressure(self))
        self.session.attached(self)
        ready, self.ready = self.ready, None
        if ready is not None:
            ready.callback(self)

    def _refused(self, envelope):
        status = Status.parse(envelope.get("st"))
        kind, message = (envelope.get("err") or [status.label, "refused"])[:2]
        self._failure = error_for(status, f"the dispatcher refused {self.session.name}: {message}",
                                  remote_type=kind)
        self.log.error("{error}", error=self._failure)

    def _tick(self):
        """Ten times per holdtime: drop a silent dispatcher within holdtime + 10 %,
        and speak on a link that has been quiet for an interval."""
        self._ticker = None
        now = self.clock.seconds()
        liveness = self.liveness
        if self.congested:
            self.last_seen = now
        elif liveness.expired(now, self.last_seen):
            self.log.warn("the dispatcher went silent: {silence}; dropping the connection",
                          silence=liveness.silence(now, self.last_seen))
            self.transport.abortConnection()
            return
        if liveness.keepalive_due(now, self.last_sent):
            self.send(messages.keepalive())
        self._ticker = self.clock.callLater(liveness.holdtime / 10, self._tick)

    def frameTooLarge(self, length):
        self.frameMalformed(ProtocolError(
            f"the dispatcher sent a frame of {length} bytes (limit {self.max_frame})",
            status=Status.TOO_LARGE))

    def frameMalformed(self, error):
        self.log.error("malformed frame from the dispatcher ({error}); dropping the connection",
                       error=error)
        if self.ready is not None and self._failure is None:
            self._failure = ProtocolError("the peer sent bytes that are not an actornet frame: "
                                          "is that a dispatcher?")
        self.stopReading()
        self.hangUp()

    def connectionLost(self, reason):
        if self._ticker is not None and self._ticker.active():
            self._ticker.cancel()
        self._ticker = None
        ready, self.ready = self.ready, None
        if ready is not None:
            failure = self._failure or ActornetError(
                f"connection to the dispatcher closed before registration: "
                f"{reason.getErrorMessage()}", status=Status.ACTOR_LOST)
            ready.errback(failure)
        else:
            self.session.detached(self, Failure(self._failure) if self._failure else reason)


@implementer(IPushProducer)
class _OwnBackPressure:
    """The link's answer to its own transport's full write buffer: stop reading
    requests until what was written drains, as the dispatcher does for a slow
    peer, so an actor never piles up unsent answers (the dispatcher then sees it
    busy and sends its requests to others, or answers BUSY).

    Registered once READY came: a TLS transport pauses its producer until the
    handshake is done, and reading must go on for the handshake to finish."""

    def __init__(self, link):
        self.link = link

    def pauseProducing(self):
        self.link.congested = True
        self.link.transport.pauseProducing()

    def resumeProducing(self):
        self.link.congested = False
        self.link.transport.resumeProducing()

    def stopProducing(self):
        self.link.congested = False
