"""What a dispatcher knows of the other dispatchers of its federation.

Every dispatcher publishes a *hello* every keepalive interval, at once when
its actors change, and a last one (``bye``) when it stops: its incarnation
(``boot``, new at every start), its actors with their services and load, the
services its actors ever served, and its health.  A dispatcher not heard from
for a holdtime is dead.  Hellos come from other processes, so
:func:`read_hello` checks every field before anything is believed.
"""

import attrs

from actornet.protocols import codec

MAX_ACTORS = 100_000


class BadHello(ValueError):
    """A hello that is not what a dispatcher sends."""


@attrs.define(eq=False)
class RemoteDispatcher:
    """Another dispatcher as last heard; ``actors`` are its actors reachable from here."""

    name: str
    boot: int
    last_seen: float
    hello: dict
    actors: dict = attrs.Factory(dict)

    def row(self, now, holdtime):
        """One row of ``mmi.dispatchers``."""
        health = self.hello["health"]
        silent = now - self.last_seen
        return {"name": self.name, "status": "alive", "host": self.hello["host"],
                "pid": self.hello["pid"], "boot": self.boot,
                "holdtime_left": round(max(0.0, holdtime - silent), 3),
                "actors": len(self.hello["actors"]), **health}


def hello(name, boot, host, pid, actors, known, health, *, bye=False):
    """A hello's bytes; ``actors`` are ``(name, services, in_flight)``."""
    message = {"v": 1, "name": name, "boot": boot, "host": host, "pid": pid,
               "actors": [[actor, list(services), load] for actor, services, load in actors],
               "known": sorted(known), "health": health}
    if bye:
        message["bye"] = True
    return codec.encode(message)


def read_hello(data):
    """The checked hello in ``data``.

    @raise BadHello: naming what is wrong.
    """
    try:
        message = codec.decode(data)
    except ValueError as e:
        raise BadHello(f"not CBOR: {e}") from e
    if not isinstance(message, dict) or message.get("v") != 1:
        raise BadHello("not a version 1 hello map")
    for key, kind in (("name", str), ("boot", int), ("host", str), ("pid", int),
                      ("actors", list), ("known", list), ("health", dict)):
        if not isinstance(message.get(key), kind):
            raise BadHello(f"{key!r} is missing or not {kind.__name__}")
    if len(message["actors"]) > MAX_ACTORS:
        raise BadHello(f"more than {MAX_ACTORS} actors")
    for entry in message["actors"]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], list) and all(isinstance(s, str) for s in entry[1])
                and isinstance(entry[2], int)):
            raise BadHello("an actor is not [name, [services], in_flight]")
    if not all(isinstance(service, str) for service in message["known"]):
        raise BadHello("'known' is not a list of service names")
    health = message["health"]
    if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in health.items()):
        raise BadHello("'health' is not a map of numbers")
    return message
