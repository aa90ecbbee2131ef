"""What the dashboard heard of actors' lives: recent deaths and restarts, and who is dead.

A snapshot shows who is connected now; an actor that died is simply absent
from it.  To show it as dead (until it comes back) and to list recent deaths,
leaves and restarts, the dashboard listens to the events dispatchers publish
themselves (this one's, and in a federation those the others relay), on
``actornet.actors`` (joined, left, died) and ``actornet.supervisor``
(restarting, gave_up), through
:attr:`Dispatcher.lifecycle_listeners
<actornet.dispatcher.core.Dispatcher.lifecycle_listeners>`: in process, with
no connection, and at no cost per routed message.  Both tables are bounded.
"""

from collections import OrderedDict, deque

from twisted.logger import Logger

from actornet.protocols import codec
from actornet.protocols.codes import LIFECYCLE_TOPIC, SUPERVISOR_TOPIC

RECENT = 50
"""How many events the log keeps for the page."""

MAX_DEAD = 1000
"""How many dead actors the log remembers; past it the longest dead is forgotten."""

DEATHS = frozenset({"died", "gave_up"})
"""Events after which an actor is dead until it joins again."""

SHOWN = frozenset({"died", "left", "restarting", "gave_up"})
"""Events listed among the recent ones (joins are many and dull)."""


class LifecycleLog:
    """Recent lifecycle events and the actors dead and not back.

    @param clock: stamps each event with its ``seconds()``.
    @param on_death: ``() -> None``, called once an actor is heard to die, so a
        picture can go out at once.
    """

    log = Logger()

    def __init__(self, clock, on_death=lambda: None, *, recent=RECENT, max_dead=MAX_DEAD):
        self.clock = clock
        self.on_death = on_death
        self.recent = deque(maxlen=recent)
        self.max_dead = max_dead
        self._dead = OrderedDict()

    def listen(self, envelope, body):
        """A dispatcher's own event (``(envelope, body)``, as published); events of
        other topics and malformed ones are ignored (the latter logged)."""
        topic = envelope.get("top")
        if topic not in (LIFECYCLE_TOPIC, SUPERVISOR_TOPIC):
            return
        try:
            data = codec.decode(bytes(body))
            event, name = data["event"], data["name"]
        except Exception as e:
            self.log.warn("the dashboard ignored a malformed {topic} event: {error}",
                          topic=topic, error=e)
            return
        if isinstance(event, str) and isinstance(name, str):
            self.heard(event, name, data)

    def heard(self, event, name, data):
        """Record ``event`` (joined, left, died, restarting, gave_up) of actor ``name``;
        ``data`` may carry ``services``, ``reason``, ``dispatcher``, ``delay``."""
        if event == "joined":
            self._dead.pop(name, None)
        if event in SHOWN:
            self.recent.appendleft(_row(self.clock.seconds(), event, name, data))
        if event in DEATHS:
            services = data.get("services")
            if not isinstance(services, list) or event == "gave_up":
                services = self._dead.get(name, {}).get("services", [])
            self._dead.pop(name, None)
            self._dead[name] = {"name": name, "services": [str(s) for s in services],
                                "since": self.clock.seconds(), "event": event}
            while len(self._dead) > self.max_dead:
                self._dead.popitem(last=False)
            self.on_death()

    def dead(self, alive=frozenset()):
        """The actors dead and not back, oldest death first, as dicts (name,
        services, since, event); those named in ``alive`` (connected again,
        whatever was heard) are left out and forgotten."""
        for name in [name for name in self._dead if name in alive]:
            del self._dead[name]
        return list(self._dead.values())

    def events(self):
        """The recent events, newest first."""
        return list(self.recent)


def _row(at, event, name, data):
    row = {"at": at, "event": event, "name": name}
    for field in ("reason", "dispatcher", "delay"):
        value = data.get(field)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            row[field] = value
    return row
