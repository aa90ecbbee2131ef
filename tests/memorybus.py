"""An in-memory NATS for federation tests: every dispatcher's bus on one hub, on a Clock.

A :class:`MemoryBus` offers what :class:`~actornet.dispatcher.federation.Federation`
uses of :class:`~actornet.dispatcher.natsbus.NatsBus` (``subscribe``, ``start``,
``publish``, ``max_payload``, ``connected``, ``kv``, ``stop``), with no
key-value store, so names are admitted on each dispatcher's own knowledge.
The :class:`Hub` delivers each message one ``callLater(0)`` after it was
published, in publish order, to every other connected bus subscribed to its
subject (as NATS does for a client connected with ``no_echo``), so what
happens is fixed by the order things were written in and by the test's
``clock.advance``.  Faults are the hub's: it drops or holds back the messages
a predicate picks, and cuts a bus off (its federation hears that it is down)
and lets it back.
"""

import attrs
from twisted.internet.defer import succeed


@attrs.frozen
class Message:
    sender: object
    subject: str
    data: bytes


def matches(pattern, subject):
    """Whether NATS delivers ``subject`` to a subscription on ``pattern``
    (``*`` stands for any one token)."""
    wanted, tokens = pattern.split("."), subject.split(".")
    return len(wanted) == len(tokens) and all(
        want in ("*", token) for want, token in zip(wanted, tokens, strict=True))


class Hub:
    """The NATS server of a test: ``crossed`` lists every message delivered,
    ``dropped`` every message a fault ate.  Dispatchers that never fall quiet (two
    ends answering each other forever, with no time passing) fail the test after
    ``budget`` messages at one instant instead of hanging it."""

    def __init__(self, clock, budget=10_000):
        self.clock = clock
        self.budget = budget
        self._instant = None
        self._spent = 0
        self.buses = []
        self.crossed = []
        self.dropped = []
        self.held = []
        self._drops = []
        self._hold = None

    def drop(self, picks, count=1):
        """Drop the next ``count`` messages for which ``picks(message)`` is true."""
        self._drops.append([picks, count])

    def hold(self, picks):
        """Keep back every message ``picks(message)`` chooses until :meth:`release`."""
        self._hold = picks

    def heal(self):
        """Drop nothing more, and send what :meth:`hold` kept back."""
        self._drops = []
        self.release()

    def release(self):
        """Send what :meth:`hold` kept back, in the order it was published."""
        self._hold = None
        held, self.held = self.held, []
        for message in held:
            self._send(message)

    def cut(self, bus):
        """``bus`` loses its connection: its federation hears that it is down, and
        it neither sends nor receives until :meth:`rejoin`."""
        bus.connected = False
        bus.on_down("cut off by the test")

    def rejoin(self, bus):
        """``bus`` is connected again (unless it was stopped meanwhile)."""
        if bus not in self.buses:
            return
        bus.connected = True
        bus.on_up()

    def count(self, pattern):
        """How many delivered messages had a subject ``pattern`` matches."""
        return sum(1 for message in self.crossed if matches(pattern, message.subject))

    def publish(self, message):
        for rule in self._drops:
            picks, left = rule
            if picks(message):
                rule[1] = left - 1
                if rule[1] == 0:
                    self._drops.remove(rule)
                self.dropped.append(message)
                return
        if self._hold is not None and self._hold(message):
            self.held.append(message)
            return
        self._send(message)

    def _send(self, message):
        self.clock.callLater(0, self._deliver, message)

    def _deliver(self, message):
        if self._instant != self.clock.seconds():
            self._instant, self._spent = self.clock.seconds(), 0
        self._spent += 1
        if self._spent > self.budget:
            raise RuntimeError(f"more than {self.budget} messages crossed at one instant: "
                               "the dispatchers never fall quiet")
        self.crossed.append(message)
        for bus in list(self.buses):
            if bus is not message.sender and bus.connected:
                for pattern, callback in bus.subscriptions:
                    if matches(pattern, message.subject):
                        callback(message.subject, message.data)


class MemoryBus:
    """One dispatcher's connection to the ``hub``; it connects one ``callLater(0)``
    after :meth:`start`, and counts in ``unsent`` what it could not publish."""

    def __init__(self, hub, max_payload=1024 * 1024):
        self.hub = hub
        self.max_payload = max_payload
        self.connected = False
        self.kv = None
        self.subscriptions = []
        self.unsent = 0
        self.on_up = self.on_down = None
        hub.buses.append(self)

    def subscribe(self, subject, callback):
        self.subscriptions.append((subject, callback))

    def start(self, on_up, on_down):
        self.on_up, self.on_down = on_up, on_down
        self.hub.clock.callLater(0, self.hub.rejoin, self)

    def publish(self, subject, data):
        """Send ``data`` on ``subject``; more than ``max_payload`` bytes is an error
        (NATS refuses such a message)."""
        if len(data) > self.max_payload:
            raise ValueError(f"{len(data)} bytes on {subject} exceed max_payload "
                             f"({self.max_payload})")
        if not self.connected:
            self.unsent += 1
            return
        self.hub.publish(Message(self, subject, bytes(data)))

    def stop(self):
        self.connected = False
        self.hub.buses.remove(self)
        return succeed(None)
