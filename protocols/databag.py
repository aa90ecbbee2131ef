"""Databags: the typeless, nested data every message carries.

A databag reads and writes like a dict.  It also carries the route it travelled
(one :class:`~protocols.stamp.Stamp` per hop) so that whoever holds it can see
where it has been.
"""

from collections.abc import Mapping


class DataBag(dict):
    """A dict of CBOR-encodable data, plus the route it arrived by.

    ``route`` is a tuple of stamps, oldest first.  ``sender`` names the actor
    (or client) that sent the message, as the dispatcher saw it.
    Bags compare by :attr:`key`, so a list of bags sorts in the order their
    first hop created them.
    """

    __slots__ = ("route", "sender", "_request")

    def __init__(self, *args, route=(), sender=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.route = tuple(route)
        self.sender = sender
        self._request = None

    @property
    def key(self):
        """``(server, sequence)`` of the hop that first stamped the bag."""
        if not self.route:
            return ("", 0)
        first = self.route[0]
        return (first.name, first.seq)

    def __lt__(self, other):
        if not isinstance(other, DataBag):
            return NotImplemented
        return self.key < other.key

    def visited(self, name):
        """Whether a hop called ``name`` stamped this bag before."""
        return any(stamp.name == name for stamp in self.route)

    @property
    def hops(self):
        """How many hops stamped this bag."""
        return len(self.route)

    def __repr__(self):
        return f"DataBag({dict.__repr__(self)}, hops={len(self.route)})"


def as_body(value):
    """The mapping a message body holds for ``value``.

    Bags are maps on the wire.  ``None`` becomes an empty map and any other
    non-mapping value ``v`` becomes ``{"result": v}``, so a handler may simply
    ``return a + b``.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value if type(value) is dict else dict(value)
    return {"result": value}
