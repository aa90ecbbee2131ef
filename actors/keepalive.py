"""The keepalive service: who is alive, who died, and for how long.

Liveness itself is checked by the dispatcher and each actor's link (keepalives
on idle links, a peer silent for interval x multiplier is dropped).  This actor
is the view of it: ``show`` lists every actor the dispatcher has now, with its
holdtime left and keepalive counts, plus the ones that died or left since this
actor started, remembered from the dispatcher's lifecycle events.

Death watch: subscribe to the topic ``actornet.actors`` (``LIFECYCLE_TOPIC``);
the dispatcher publishes ``joined``, ``left`` and ``died`` there itself, so a
watcher hears of a death even when this actor is the one that died.
"""

from collections import OrderedDict

from actornet.actors.actor import Actor, handler
from actornet.protocols.codes import LIFECYCLE_TOPIC

REMEMBERED = 1000


class Keepalive(Actor):
    """Serves ``keepalive.show``: every actor, alive or dead, filterable."""

    services = ("keepalive",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.departed = OrderedDict()
        self.subscribe(LIFECYCLE_TOPIC, self._lifecycle)

    def _lifecycle(self, bag):
        name, event, services = bag.get("name"), bag.get("event"), bag.get("services", [])
        if (not isinstance(name, str) or event not in ("joined", "left", "died")
                or not isinstance(services, list)):
            self.log.warn("{actor}: ignored a malformed lifecycle event {event!r}",
                          actor=self.name, event=dict(bag))
            return
        if event == "joined":
            self.departed.pop(name, None)
            return
        self.departed.pop(name, None)
        self.departed[name] = {
            "name": name,
            "services": services,
            "status": "dead",
            "dispatcher": str(bag.get("dispatcher", "")),
            "event": bag.get("event"),
            "reason": str(bag.get("reason", "")),
            "since": self._when(bag),
        }
        while len(self.departed) > REMEMBERED:
            self.departed.popitem(last=False)

    def _when(self, bag):
        """When the event happened: its first stamp's time, or now."""
        try:
            return bag.route[0].arrived if bag.route else self.clock.seconds()
        except ValueError:
            return self.clock.seconds()

    @handler
    async def show(self, bag):
        """Every actor: ``{"actors": [...]}``, filtered by ``service`` and ``status``."""
        service = bag.get("service")
        status = bag.get("status")
        query = {"service": service} if service else {}
        alive = (await self.ask("mmi", "show_actors", query, timeout=10.0))["actors"]
        for row in alive:
            if row["name"] == self.name:
                row["in_flight"] -= 1  # the show request being answered is not work to show
        names = {row["name"] for row in alive}
        rows = [] if status == "dead" else alive
        if status != "alive":
            now = self.clock.seconds()
            for row in self.departed.values():
                if row["name"] in names or (service and service not in row["services"]):
                    continue
                rows.append(dict(row, dead_for=round(now - row["since"], 3)))
        return {"actors": rows}
