"""Who a peer is, and what it may do: identities and their permissions.

A peer's identity is settled when it registers (see
:mod:`~actornet.dispatcher.admission`); from then on the dispatcher asks its
:class:`Identity` before it lets the peer register a name, serve a service,
ask a service or publish on a topic, as NATS checks a user's subject
permissions and Crossbar a role's URIs.  Permissions are lists of
``fnmatch`` patterns; a refusal is UNAUTHORIZED naming what was refused.

Whatever the permissions say, some things belong to the dispatcher alone:
topics under ``actornet.`` are published only by it, and the names
``dispatcher``, ``mmi`` and any under ``actornet`` are never registered.
"""

from fnmatch import fnmatchcase

import attrs

ACTIONS = ("register", "serve", "ask", "publish")
EVERYTHING = ("*",)


@attrs.frozen
class Identity:
    """A named identity and the patterns of what it may do.

    ``register``: names it may register; ``serve``: services it may serve;
    ``ask``: services it may send requests to; ``publish``: topics it may publish on.
    """

    name: str
    register: tuple = EVERYTHING
    serve: tuple = EVERYTHING
    ask: tuple = EVERYTHING
    publish: tuple = EVERYTHING

    def may(self, action, value):
        """Whether this identity may ``action`` (one of ACTIONS) ``value``."""
        return any(fnmatchcase(value, pattern) for pattern in getattr(self, action))

    def refusal(self, action, value):
        """The message of an UNAUTHORIZED answer for a refused ``action``."""
        what = {"register": "register the name", "serve": "serve the service",
                "ask": "ask the service", "publish": "publish on the topic"}[action]
        return f"identity {self.name!r} may not {what} {value!r}"


SHARED = Identity("shared")
"""Every peer of a network with one shared token (or none): it may do anything
that is not the dispatcher's alone."""
