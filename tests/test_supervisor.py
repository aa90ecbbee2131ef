"""Supervision: crashed actors are replaced by fresh ones, until they crash too often."""

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from actornet import Actor, handler
from actornet.actors.service import ActorService
from actornet.actors.supervisor import RestartPolicy, Supervisor
from actornet.protocols.codes import SUPERVISOR_TOPIC


class NeverConnects:
    def connect(self, factory):
        return Deferred()


class CrashesOnTick(Actor):
    """Its periodic work always fails: a crash of the actor itself."""

    periodic_interval = 1.0
    built = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).built += 1

    def periodic(self):
        raise RuntimeError("disk on fire")


def test_a_crashing_actor_is_restarted_then_given_up_on():
    """Each crash builds a fresh actor after the backoff; the 4th within the window gives up."""
    clock = Clock()
    announced = []
    supervisor = Supervisor(
        clock, lambda actor, on_crash: ActorService(actor, NeverConnects(), clock,
                                                    on_crash=on_crash),
        announce=announced.append)
    supervisor.startService()
    CrashesOnTick.built = 0
    child = supervisor.supervise(
        "fragile", lambda: CrashesOnTick("fragile", clock=clock),
        RestartPolicy(max_restarts=3, window=60.0, backoff=lambda attempt: 2.0))
    first = child.service.actor
    clock.advance(1.0)
    assert not child.service.running and CrashesOnTick.built == 1
    clock.advance(2.0)
    assert child.service.running and child.service.actor is not first
    assert CrashesOnTick.built == 2
    clock.pump([1.0, 2.0, 1.0, 2.0, 1.0])
    assert [event["event"] for event in announced] == ["restarting"] * 3 + ["gave_up"]
    assert announced[-1] == {"event": "gave_up", "name": "fragile", "crashes": 4,
                             "reason": "disk on fire"}
    clock.advance(60)
    assert CrashesOnTick.built == 4 and child.gave_up
    assert supervisor.show() == [{"name": "fragile", "restarts": 3, "recent_crashes": 4,
                                  "gave_up": True, "running": False}]


def test_crashes_outside_the_window_do_not_add_up():
    """Crashes further apart than the window are forgiven."""
    clock = Clock()
    supervisor = Supervisor(
        clock, lambda actor, on_crash: ActorService(actor, NeverConnects(), clock,
                                                    on_crash=on_crash),
        announce=lambda data: None)
    supervisor.startService()
    child = supervisor.supervise(
        "slow-burn", lambda: Actor("slow-burn", clock=clock),
        RestartPolicy(max_restarts=1, window=10.0, backoff=lambda attempt: 0.5))
    for _ in range(5):
        child.service.actor.crash("again")
        clock.advance(11)
    assert not child.gave_up and child.restarts == 5 and child.service.running


class Fragile(Actor):
    services = ("fragile",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = 0

    @handler
    def work(self, bag):
        self.served += 1
        return {"served": self.served, "instance": id(self)}

    @handler
    def break_down(self, bag):
        self.clock.callLater(0, self.crash, "asked to break down")
        return {}


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_supervised_actor_comes_back_fresh_and_others_keep_running(cluster):
    """After a crash the network gets a fresh instance; the event says so."""
    watcher = await cluster.client("watcher")
    events = []
    watcher.subscribe(SUPERVISOR_TOPIC, lambda bag: events.append(dict(bag)))
    child = await cluster.supervise(
        "fragile", lambda: Fragile("fragile"),
        policy=RestartPolicy(backoff=lambda attempt: 0.05))
    first = await watcher.ask("fragile", "work")
    await watcher.ask("fragile", "break_down")
    await cluster.wait_for(lambda: child.restarts == 1 and child.service.running)
    await child.service.whenReady()
    await cluster.registered("fragile")
    second = await watcher.ask("fragile", "work")
    assert (first["served"], second["served"]) == (1, 1)
    assert first["instance"] != second["instance"]
    assert [(e["event"], e["name"]) for e in events] == [("restarting", "fragile")]
