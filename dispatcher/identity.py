"""Who a peer is, and what it may do: identities and their permissions.

A peer's identity is settled when it registers (see
:mod:`~actornet.dispatcher.admission`); from then on the dispatcher asks its
:class:`Identity` before it lets the peer register a name, serve a service,
ask a service or publish on a topic, as NATS checks a user's subject
permissions and Crossbar a role's URIs.  Permissions are lists of
``fnmatch`` patterns, and they are allow-lists: what no pattern allows is
refused, so an identity may do nothing it was not given, and giving it one
thing never takes another away.  A refusal is UNAUTHORIZED naming what was
refused.

Whatever the permissions say, some things belong to the dispatcher alone
(:func:`reserved`): topics under ``actornet.`` are published only by it, the
names ``dispatcher``, ``mmi``, the dispatcher's own and any starting with
``actornet`` are never registered, and the services ``mmi`` and any under
``actornet.`` are never served.
"""

from fnmatch import fnmatchcase

import attrs

ACTIONS = ("register", "serve", "ask", "publish")
EVERYTHING = ("*",)
RESERVED_NAMES = frozenset({"dispatcher", "mmi"})
ANSWERED_HERE = frozenset({"mmi", "journal"})
"""The services the dispatcher answers itself, which no peer may serve."""
RESERVED_PREFIX = "actornet"


@attrs.frozen
class Identity:
    """A named identity and the patterns of what it may do.

    ``register``: names it may register; ``serve``: services it may serve;
    ``ask``: services it may send requests to; ``publish``: topics it may
    publish on.  Each is empty (nothing allowed) unless given.  ``token``, when
    set, is a secret a peer presents in REGISTER to be this identity (kept out
    of the repr, so logging an identity never prints it).
    """

    name: str
    register: tuple = ()
    serve: tuple = ()
    ask: tuple = ()
    publish: tuple = ()
    token: str | None = attrs.field(default=None, repr=False)

    def may(self, action, value):
        """Whether this identity may ``action`` (one of ACTIONS) ``value``."""
        patterns = getattr(self, action)
        return "*" in patterns or any(fnmatchcase(value, pattern) for pattern in patterns)

    def refusal(self, action, value):
        """The message of an UNAUTHORIZED answer for a refused ``action``."""
        what = {"register": "register the name", "serve": "serve the service",
                "ask": "ask the service", "publish": "publish on the topic"}[action]
        return f"identity {self.name!r} may not {what} {value!r}"


SHARED = Identity("shared", EVERYTHING, EVERYTHING, EVERYTHING, EVERYTHING)
"""Every peer of a network with one shared token (or none): it may do anything
that is not the dispatcher's alone."""


def reserved(action, value, dispatcher="dispatcher"):
    """Why nobody, whatever its identity, may ``action`` (``register`` or
    ``serve``) ``value``; None when it is not reserved.

    Names are compared without regard to case, so ``Dispatcher`` cannot pass
    for the dispatcher in a log line or a route either.
    """
    folded = value.casefold()
    if action == "register":
        if folded in RESERVED_NAMES or folded == dispatcher.casefold():
            return f"the name {value!r} is the dispatcher's own"
        if folded.startswith(RESERVED_PREFIX):
            return (f"the name {value!r} is reserved: names starting with "
                    f"{RESERVED_PREFIX!r} belong to actornet")
    elif action == "serve":
        if folded in ANSWERED_HERE:
            return f"the service {value!r} is answered by the dispatcher itself"
        if folded.startswith(RESERVED_PREFIX + "."):
            return (f"the service {value!r} is reserved: services under "
                    f"{RESERVED_PREFIX + '.'!r} belong to actornet")
    return None
