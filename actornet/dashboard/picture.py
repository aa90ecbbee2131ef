"""The dashboard's picture of the star: one JSON-ready dict, made from a snapshot.

Everything the page draws is computed here, server-side and once per picture,
from :meth:`Dispatcher.snapshot <actornet.dispatcher.core.Dispatcher.snapshot>`
and what the :class:`~actornet.dashboard.lifecycle.LifecycleLog` heard, so
every browser shows the same numbers and the page only draws.  An actor is

- ``busy`` when it has requests in flight,
- ``alive`` when it is connected and has none,
- ``dead`` when it died (or its supervisor gave up on it) and is not back.

With a federation, the other dispatchers and their actors come from the
snapshot's ``federation`` view; their rates are not known here (``null``).
"""

from actornet.dashboard.rates import Rates

ALIVE, BUSY, DEAD = "alive", "busy", "dead"


class PictureMaker:
    """Makes pictures of one dispatcher.

    @param snapshot: ``() -> Snapshot``, the dispatcher's
        :meth:`~actornet.dispatcher.core.Dispatcher.snapshot`.
    @param lifecycle: a :class:`~actornet.dashboard.lifecycle.LifecycleLog`.
    @param journal: whether the dispatcher keeps a journal (the page then
        offers bags' timelines).
    """

    def __init__(self, snapshot, lifecycle, *, journal=False, rates=None):
        self.snapshot = snapshot
        self.lifecycle = lifecycle
        self.journal = journal
        self.rates = rates if rates is not None else Rates()

    def picture(self):
        """The picture of now, a dict ready for ``json.dumps``."""
        snapshot = self.snapshot()
        rates = self.rates.update(snapshot.now, snapshot.requests)
        federation = snapshot.federation
        remote_actors = federation["actors"] if federation else []
        alive = snapshot.names | {actor["name"] for actor in remote_actors}
        actors = [_local(peer, snapshot.name, rates) for peer in snapshot.actors]
        actors += [_remote(actor) for actor in remote_actors]
        actors += [_dead(row) for row in self.lifecycle.dead(alive)]
        return {
            "at": snapshot.now,
            "dispatchers": _dispatchers(snapshot),
            "network": federation["network"] if federation else None,
            "services": _by_service(actors, rates),
            "events": self.lifecycle.events(),
            "journal": self.journal,
            "totals": {
                "actors": len(actors),
                "busy": sum(actor["status"] == BUSY for actor in actors),
                "dead": sum(actor["status"] == DEAD for actor in actors),
                "in_flight": snapshot.in_flight,
                "rate": round(sum(done for (kind, _), (done, _e) in rates.items()
                                  if kind == "service"), 3),
                "errors": round(sum(errors for (kind, _), (_d, errors) in rates.items()
                                    if kind == "service"), 3),
            },
        }


def _dispatchers(snapshot):
    here = {"name": snapshot.name, "host": snapshot.host, "pid": snapshot.pid,
            "here": True, "status": ALIVE, "connections": snapshot.connections,
            "in_flight": snapshot.in_flight, "actors": len(snapshot.actors),
            "uptime": round(snapshot.now - snapshot.started_at, 1)}
    rows = [here]
    if snapshot.federation:
        here["status"] = ALIVE if snapshot.federation["connected"] else "cut off"
        for row in snapshot.federation["dispatchers"]:
            rows.append({"name": row["name"], "host": row.get("host"), "pid": row.get("pid"),
                         "here": False, "status": row.get("status", ALIVE),
                         "actors": row.get("actors"), "in_flight": row.get("in_flight")})
    return rows


def _local(peer, dispatcher, rates):
    done, errors = rates.get(("actor", peer.name), (0.0, 0.0))
    return {"name": peer.name, "services": list(peer.services), "dispatcher": dispatcher,
            "status": BUSY if peer.in_flight else ALIVE, "in_flight": peer.in_flight,
            "handled": peer.handled, "rate": done, "errors": errors}


def _remote(actor):
    load = actor.get("in_flight") or 0
    return {"name": actor["name"], "services": list(actor["services"]),
            "dispatcher": actor["dispatcher"], "status": BUSY if load else ALIVE,
            "in_flight": load, "handled": None, "rate": None, "errors": None}


def _dead(row):
    return {"name": row["name"], "services": row["services"], "dispatcher": None,
            "status": DEAD, "in_flight": 0, "handled": None, "rate": None, "errors": None,
            "since": row["since"]}


def _by_service(actors, rates):
    """``[{name, rate, errors, actors: [...]}]`` by service name; an actor that
    serves several services is listed under each, and one that serves none
    (known only by its death) under ``""``."""
    groups = {}
    for actor in actors:
        for service in actor["services"] or [""]:
            groups.setdefault(service, []).append(actor)
    return [{"name": service,
             "rate": rates.get(("service", service), (0.0, 0.0))[0],
             "errors": rates.get(("service", service), (0.0, 0.0))[1],
             "actors": sorted(members, key=lambda actor: actor["name"])}
            for service, members in sorted(groups.items())]
