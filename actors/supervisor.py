"""One-for-one supervision: a crashed actor is replaced by a fresh one.

As zephserver's service manager resurrects a dead service and OTP's
one-for-one supervisor restarts a crashed child, the :class:`Supervisor`
builds a new instance of an actor that crashed (an exception in one of its own
hooks, or :meth:`Actor.crash`; a failing request is the asker's business, not
a crash) and starts it again after a backoff delay.  More than
``max_restarts`` crashes within ``window`` seconds means the actor cannot
live: the supervisor gives up on it, logs it, and announces it on the topic
``actornet.supervisor``, while every other actor goes on running.

A lost connection is not a crash: the actor keeps its state and reconnects by
itself (see :mod:`actornet.actors.service`).
"""

from collections import deque

import attrs
from twisted.application.internet import backoffPolicy
from twisted.application.service import MultiService
from twisted.logger import Logger


@attrs.frozen
class RestartPolicy:
    """How often a crashing actor may be restarted, and how long to wait first."""

    max_restarts: int = 5
    window: float = 60.0
    backoff: object = attrs.field(factory=lambda: backoffPolicy(initialDelay=0.1, maxDelay=10.0))


@attrs.define(eq=False)
class Child:
    """One supervised actor: how to build it, its current service, its crash times."""

    name: str
    build: object
    policy: RestartPolicy
    service: object = None
    crashes: deque = attrs.Factory(deque)
    gave_up: bool = False
    restarts: int = 0


class Supervisor(MultiService):
    """Runs actors and restarts each one that crashes, one for one.

    @param start_service: ``(actor, on_crash) -> ActorService`` (how to connect an
        actor; the service must call ``on_crash(reason)`` when the actor crashes).
    @param announce: ``data -> None`` that publishes a supervisor event; by
        default one of the supervised actors that is connected publishes it.
    """

    log = Logger()

    def __init__(self, clock, start_service, announce=None):
        super().__init__()
        self.clock = clock
        self.start_service = start_service
        self.announce = announce or self._announce_through_a_child
        self.children = {}
        self._pending = {}

    def supervise(self, name, build, policy=None):
        """Run ``build()`` (an actor called ``name``) under supervision; returns its Child."""
        child = Child(name, build, policy or RestartPolicy())
        self.children[name] = child
        self._start(child)
        return child

    def _start(self, child):
        self._pending.pop(child.name, None)
        actor = child.build()
        service = self.start_service(actor, lambda reason: self._crashed(child, reason))
        child.service = service
        service.setServiceParent(self)

    def _crashed(self, child, reason):
        now = self.clock.seconds()
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > child.policy.window:
            child.crashes.popleft()
        message = reason.getErrorMessage() if hasattr(reason, "getErrorMessage") else str(reason)
        if len(child.crashes) > child.policy.max_restarts:
            child.gave_up = True
            self.log.critical(
                "supervisor: {name} crashed {count} times within {window}s; giving up on it "
                "(last crash: {message})", name=child.name, count=len(child.crashes),
                window=child.policy.window, message=message)
            self.announce({"event": "gave_up", "name": child.name,
                           "crashes": len(child.crashes), "reason": message})
            return
        delay = child.policy.backoff(len(child.crashes) - 1)
        child.restarts += 1
        self.log.warn("supervisor: restarting {name} in {delay:.2f}s after a crash ({message})",
                      name=child.name, delay=delay, message=message)
        self.announce({"event": "restarting", "name": child.name, "delay": delay,
                       "reason": message})
        self._pending[child.name] = self.clock.callLater(delay, self._start, child)

    def stopService(self):
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        return super().stopService()

    def show(self):
        """Each child's state, for management tools."""
        return [{"name": child.name, "restarts": child.restarts,
                 "recent_crashes": len(child.crashes), "gave_up": child.gave_up,
                 "running": bool(child.service and child.service.running)}
                for child in self.children.values()]

    def _announce_through_a_child(self, data):
        for child in self.children.values():
            actor = child.service.actor if child.service else None
            if actor is not None and actor.connected and actor.context.crashed is None:
                actor.tell("mmi", "supervisor_event", data)
                return
        self.log.warn("supervisor: no connected actor to announce {event} of {name}",
                      event=data["event"], name=data["name"])
