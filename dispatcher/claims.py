"""Names unique across a federation, claimed in NATS's key-value store.

Before a dispatcher admits an actor, it claims the actor's name: it creates
the key of that name holding ``[dispatcher, boot]``.  JetStream makes the
create atomic across the cluster, so of two actors registering one name on
two dispatchers at once, exactly one wins.  A key held by a dispatcher that
is dead (not heard from for a holdtime, or restarted: another ``boot``) is
taken over; one held by a live dispatcher is NAME_TAKEN.  A name is released
when its actor leaves.

Without a store (NATS down, no JetStream) a name is admitted on the local
registry and the other dispatchers' hellos alone, and claimed once NATS is
back: a dispatcher cut off from NATS keeps serving its own star.
"""

import asyncio
import base64

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from actornet.protocols import codec


class KeyTaken(Exception):
    """A key-value write lost: the key exists, or changed since it was read."""


class NoStore(Exception):
    """There is no key-value store to use (no JetStream, or no connection)."""


def deferred(coroutine):
    """A Deferred for an asyncio coroutine (the reactor runs the asyncio loop)."""
    return Deferred.fromFuture(asyncio.ensure_future(coroutine))


class NameHeld(Exception):
    """The name is held by an actor on another, live, dispatcher."""


def key_for(name):
    """A key-value key for any name (keys allow only letters, digits and ``-_=./``)."""
    return "n." + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


class Claims:
    """Claims and releases names for one dispatcher (``name``, incarnation ``boot``).

    @param owner_alive: ``owner_alive(dispatcher, boot)``: True when that
        dispatcher is alive, False when it is dead, None when it is not known
        yet (this dispatcher joined less than a holdtime ago).
    """

    log = Logger()

    def __init__(self, bus, name, boot, owner_alive):
        self.bus = bus
        self.name = name
        self.boot = boot
        self.owner_alive = owner_alive
        self.value = codec.encode([name, boot])

    def claim(self, name):
        """A Deferred that fires once ``name`` is this dispatcher's, or fails with
        :class:`NameHeld`."""
        if self.bus.kv is None or not self.bus.connected:
            return succeed(None)
        return deferred(self._claim(name))

    async def _claim(self, name):
        key = key_for(name)
        try:
            try:
                await self.bus.create(key, self.value)
                return
            except KeyTaken:
                pass
            held = await self.bus.get(key)
            if held is None:
                await self.bus.create(key, self.value)
                return
            value, revision = held
            owner = _owner(value)
            if owner == (self.name, self.boot):
                return
            # An unreadable owner, or an earlier incarnation of this dispatcher, is dead.
            alive = owner is not None and owner[0] != self.name and self.owner_alive(*owner)
            if alive is None:
                raise NameHeld(f"the name {name!r} is held by an actor on dispatcher "
                               f"{owner[0]}, not heard from yet")
            if alive:
                raise NameHeld(f"the name {name!r} is taken by an actor on dispatcher "
                               f"{owner[0]}")
            await self.bus.update(key, self.value, revision)
        except KeyTaken:
            raise NameHeld(f"the name {name!r} was taken by an actor on another dispatcher "
                           "at the same moment") from None
        except NoStore as e:
            self.log.warn("federation: could not claim {name!r} ({why}); admitted on this "
                          "dispatcher's knowledge alone", name=name, why=e)

    def release(self, name):
        """Give ``name`` up (its actor left); a name held by someone else is left alone."""
        if self.bus.kv is not None and self.bus.connected:
            deferred(self._release(name)).addErrback(
                lambda f: self.log.warn("federation: could not release {name!r}: {why}",
                                        name=name, why=f.getErrorMessage()))

    async def _release(self, name):
        key = key_for(name)
        held = await self.bus.get(key)
        if held is not None and _owner(held[0]) == (self.name, self.boot):
            await self.bus.delete(key, held[1])

    def reclaim(self, names):
        """Claim the names admitted while there was no store; a clash is logged."""
        for name in names:
            self.claim(name).addErrback(
                lambda f, name=name: self.log.error(
                    "federation: actor {name!r} here has a name held elsewhere: {why}",
                    name=name, why=f.getErrorMessage()))


def _owner(value):
    try:
        owner = codec.decode(value)
    except ValueError:
        return None
    if isinstance(owner, list) and len(owner) == 2 and isinstance(owner[0], str) \
            and isinstance(owner[1], int):
        return owner[0], owner[1]
    return None
