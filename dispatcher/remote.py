"""An actor on another dispatcher of the federation, as this dispatcher sees it.

The registry and the router treat a :class:`RemoteActor` like a local peer:
it has a name, services and requests in flight, so ``any``, ``all`` and named
targets choose among local and remote actors alike.  Frames for it go through
``via``, the link to its dispatcher (see :mod:`~actornet.dispatcher.federation`),
with the actor's name as the request's target; its dispatcher does the rest.
"""

import attrs


@attrs.define(eq=False, slots=True)
class RemoteActor:
    """``load`` is what its dispatcher last reported in flight for it; ``in_flight``
    counts the requests this dispatcher has sent it and not seen answered."""

    name: str
    services: tuple
    dispatcher: str
    via: object
    load: int = 0
    in_flight: int = 0
    handled: int = 0
    working: set = attrs.Factory(set)

    @property
    def outbound(self):
        """Flow control is the link's: a congested link is every remote actor's."""
        return self.via.outbound

    @property
    def label(self):
        return f"{self.name} (on dispatcher {self.dispatcher})"

    @property
    def busyness(self):
        """What ``any`` balances on: this dispatcher's requests in flight to it and
        what its own dispatcher reported."""
        return self.in_flight + self.load
