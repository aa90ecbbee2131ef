"""A federation link: a connection to another dispatcher made of NATS messages.

Dispatchers of one network talk through NATS subjects, but each treats another
dispatcher as one more connected peer: a :class:`LinkTransport` carries the
frames, and the usual :class:`~actornet.dispatcher.peer.DispatcherProtocol`
parses them, so requests, answers, deadlines, forwards, flow control and
stamps work across dispatchers through the very code that serves local actors.

A link's bytes are a stream cut into NATS messages of at most the server's
``max_payload``; each message starts with a :data:`HEADER` naming the
sender's and the receiver's incarnation (``boot``), the stream's ``epoch`` and
a sequence number.  NATS delivers at most once and in order from one
publisher, so a gap in the sequence means bytes were lost (a slow consumer, a
reconnect): the link is then closed at both ends, which fails the requests in
flight on it with ``actor_lost``, exactly once, and a new link takes over.

Each end's stream starts with an *open* message (sequence 1) saying which of
the other end's streams it knows (0: none yet), and frames wait until the
other end's open has come: so two ends that lost each other (one was cut from
NATS, the other never noticed) agree on new streams before any frame is sent,
and no frame of an old stream is taken for a new one's.
"""

import struct

import attrs
from twisted.internet.interfaces import IAddress, ITransport
from zope.interface import implementer

HEADER = struct.Struct(">QQIQ")
"""sender's boot, receiver's boot, epoch, sequence number (1 for a link's first)."""

OPEN = 1
"""The sequence number of a stream's first message: its body is the epoch of the
other end's stream this end knows (0 for none)."""

RESET = 0
"""The sequence number of a message that closes the link it names: its body is
the epoch of the stream it last received on that link, so the other end closes
its side whichever of the two streams it knows.  A refusal (see
:meth:`LinkTransport.refuse`) names epoch 0 in its header: it closes only the
stream in its body, not the one its sender is opening."""


@attrs.frozen
class Renew:
    """The other end opened a new stream while this end's has carried frames it
    cannot have linked: this link must close and a new one follow ``epoch``."""

    epoch: int


@attrs.frozen
class Broken:
    """The link must close: ``why`` (``gap``: messages were lost)."""

    why: str
    gap: bool = False


STALE = "stale"
"""What :meth:`LinkTransport.receive` answers for a message of a stream this end
does not know (it was refused)."""


@implementer(IAddress)
class LinkAddress:
    """Where a link leads: another dispatcher of the federation."""

    def __init__(self, dispatcher):
        self.host = dispatcher
        self.dispatcher = dispatcher

    def __str__(self):
        return f"dispatcher {self.dispatcher}"


@implementer(ITransport)
class LinkTransport:
    """A link's transport: frames written here are published to ``subject``;
    ``in_epoch`` and ``in_seq`` follow the stream coming the other way.

    @param publish: ``publish(subject, payload)``, the bus's.
    @param dispatcher: the name of the dispatcher at the other end.
    @param chunk: the largest payload a NATS message may carry, less the header.
    @param on_close: called once with this transport when either end closes it.
    """

    def __init__(self, publish, dispatcher, subject, own_boot, their_boot, epoch, chunk,
                 on_close):
        self.publish = publish
        self.subject = subject
        self.own_boot = own_boot
        self.their_boot = their_boot
        self.epoch = epoch
        self.chunk = chunk
        self.on_close = on_close
        self.epoch_bytes = struct.pack(">I", epoch)
        self.seq = 0
        self.in_epoch = None
        self.in_seq = 0
        self.refused = set()
        self.held = []
        self.producer = None
        self.disconnecting = False
        self.address = LinkAddress(dispatcher)

    def header(self, seq):
        return HEADER.pack(self.own_boot, self.their_boot, self.epoch, seq)

    def open(self):
        """Start this end's stream (see :data:`OPEN`)."""
        self.seq = OPEN
        self.publish(self.subject, self.header(OPEN) + struct.pack(">I", self.in_epoch or 0))

    def refuse(self, epoch):
        """Tell the other end that its stream ``epoch`` is not one this end knows
        (its frames are dropped here): it closes the link on that stream, and only
        on that one (the header's epoch is 0, so a link the other end has already
        opened on this end's new stream is left alone)."""
        header = HEADER.pack(self.own_boot, self.their_boot, 0, RESET)
        self.publish(self.subject, header + struct.pack(">I", epoch))

    def write(self, data):
        self.writeSequence((data,))

    def writeSequence(self, parts):
        if self.disconnecting:
            return
        data = b"".join(parts)
        if self.in_epoch is None:
            self.held.append(data)
            return
        self._send(data)

    def established(self, in_epoch):
        """The other end's stream ``in_epoch`` is open (its open was the last message
        read): send what waited for it."""
        self.in_epoch = in_epoch
        self.in_seq = OPEN
        held, self.held = self.held, []
        for data in held:
            self._send(data)

    def receive(self, epoch, seq, payload):
        """What one message of the other end's stream (``epoch``, ``seq``) means.

        @return: the frames' bytes to parse; None when it carries none (an open, a
            repeated open); :data:`STALE` for a message of a stream this end does
            not know (refused, once per stream); a :class:`Broken` or a
            :class:`Renew` when the link must close.
        """
        if seq == RESET:
            if epoch == self.in_epoch or payload[:4] == self.epoch_bytes:
                return Broken(f"dispatcher {self.address.dispatcher} closed the link")
            return None
        if seq == OPEN and epoch == self.in_epoch:
            return None
        if epoch != self.in_epoch:
            if seq != OPEN:
                if epoch not in self.refused:
                    self.refused.add(epoch)
                    self.refuse(epoch)
                return STALE
            knows = int.from_bytes(payload[:4], "big")
            if knows != self.epoch and self.seq > OPEN:
                return Renew(epoch)
            if knows != self.epoch:
                self.in_epoch = epoch
                self.open()
            self.established(epoch)
            return None
        if seq != self.in_seq + 1:
            return Broken(f"{seq - self.in_seq - 1} messages from dispatcher "
                          f"{self.address.dispatcher} were lost", gap=True)
        self.in_seq = seq
        return payload

    def _send(self, data):
        chunk = self.chunk
        for offset in range(0, len(data), chunk):
            self.seq += 1
            self.publish(self.subject, self.header(self.seq) + data[offset:offset + chunk])

    def loseConnection(self):
        self.abortConnection()

    def abortConnection(self):
        """Close the link: tell the other end (so it fails what it sent on it) and
        let the protocol know it is lost."""
        if self.disconnecting:
            return
        self.disconnecting = True
        self.publish(self.subject, self.header(RESET) + struct.pack(">I", self.in_epoch or 0))
        self.on_close(self)

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def pauseProducing(self):
        """The dispatcher holds back a sender's requests: NATS cannot be paused, so
        this does nothing (the other dispatcher applies its own limits)."""

    def resumeProducing(self):
        pass

    def stopProducing(self):
        self.abortConnection()

    def getPeer(self):
        return self.address

    def getHost(self):
        return self.address
