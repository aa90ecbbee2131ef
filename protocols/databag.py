"""Databags: the typeless, nested data every message carries.

A databag reads and writes like a dict.  It also carries the route it travelled
(one :class:`~actornet.protocols.stamp.Stamp` per hop) so that whoever holds it can see
where it has been.
"""

from collections.abc import Mapping

from actornet.protocols import bodyscan, codec
from actornet.protocols.stamp import route_from_wire


class MissingField(KeyError):
    """A bag was asked for a field it does not have; the message lists those it has."""

    def __init__(self, key, present):
        super().__init__(key)
        self.key = key
        self.present = present

    def __str__(self):
        has = ", ".join(sorted(map(str, self.present))) or "none"
        return f"no field {self.key!r} in the bag (it has: {has})"


class DataBag(dict):
    """A dict of CBOR-encodable data, plus the route it arrived by.

    ``route`` is a tuple of stamps, oldest first.  ``sender`` names the actor
    (or client) that sent the message, as the dispatcher saw it.
    Bags compare by :attr:`key`, so a list of bags sorts in the order their
    first hop created them.

    A bag made from a message keeps the route in its wire form and builds the
    stamps only when ``route`` is first read, since most handlers never look.
    A bag made from a large body may keep the body itself (see :class:`UnreadBag`).
    """

    __slots__ = ("_route", "_wire_route", "sender", "_request", "_body")

    def __init__(self, *args, route=(), sender=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._route = tuple(route)
        self._wire_route = None
        self.sender = sender
        self._request = None

    def __missing__(self, key):
        raise MissingField(key, tuple(self))

    @classmethod
    def received(cls, data, wire_route, sender):
        """A bag for a received message; ``wire_route`` is parsed on first use.

        Built without ``__init__`` (one per message: its keyword handling and
        route conversion are for bags made by hand)."""
        bag = dict.__new__(cls)
        dict.update(bag, data)
        bag._route = ()
        bag._wire_route = wire_route
        bag.sender = sender
        bag._request = None
        return bag

    @classmethod
    def unread(cls, body, wire_route, sender):
        """A bag for a received body that was checked (see
        :func:`~actornet.protocols.bodyscan.check`) but not decoded."""
        bag = UnreadBag(sender=sender)
        bag._wire_route = wire_route
        bag._body = body
        dict.__setitem__(bag, _PLACEHOLDER, None)
        return bag

    @property
    def route(self):
        """The stamps, oldest first.

        @raise ValueError: when a received route is malformed.
        """
        if self._wire_route is not None:
            self._route = route_from_wire(self._wire_route)
            self._wire_route = None
        return self._route

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
        if self._wire_route is not None:
            return len(self._wire_route)
        return len(self._route)

    def __repr__(self):
        hops = len(self._wire_route) if self._wire_route is not None else len(self._route)
        return f"DataBag({dict.__repr__(self)}, hops={hops})"


class _Placeholder:
    """The one entry an unread bag holds, so no code can take it for empty."""

    def __repr__(self):
        return "<unread>"


_PLACEHOLDER = _Placeholder()


class UnreadBag(DataBag):
    """A bag whose large body has not been decoded yet.

    A handler that echoes or passes on a megabyte without looking inside
    should not pay for decoding and encoding it again: this bag keeps the
    body as it came (bytes, or the pieces it arrived in) and
    :func:`unread_body` gives it back for sending, untouched.  Every method
    that reads or changes the contents decodes first and turns the bag into
    a plain :class:`DataBag` (so nothing written to it can be lost, and later
    accesses run at dict speed); the route, sender and ``hops`` never need it.

    Code in C that looks into a dict subclass without calling its methods sees
    one placeholder entry instead of the contents: ``json`` then asks for
    ``items()`` (which decodes), and anything that reads the table directly
    fails on the placeholder rather than taking the bag for empty.  Our own
    encoding paths decode before they encode (:func:`as_body`).
    """

    __slots__ = ()

    def _load(self):
        body = self._body
        try:
            data = bodyscan.decode(body)
        except bodyscan.Unsure:
            data = codec.decode(bytes(body))
        self._body = None
        dict.clear(self)
        self.__class__ = DataBag
        dict.update(self, data)


def _decoding(name):
    """``UnreadBag.name``: decode, then do what a plain bag does."""
    def method(self, *args, **kwargs):
        self._load()
        return getattr(self, name)(*args, **kwargs)
    method.__name__ = name
    return method


CONTENT_METHODS = (
    "__contains__", "__delitem__", "__eq__", "__getitem__", "__ior__", "__iter__", "__len__",
    "__ne__", "__or__", "__reduce__", "__reduce_ex__", "__repr__", "__reversed__", "__ror__",
    "__setitem__", "__sizeof__", "clear", "copy", "get", "items", "keys", "pop", "popitem",
    "setdefault", "update", "values")
"""Every dict method that reads or changes a bag's contents."""

for _name in CONTENT_METHODS:
    setattr(UnreadBag, _name, _decoding(_name))


def unread_body(value):
    """The body ``value`` came with when it is a bag never read since: it may be
    sent again as it is.  None for anything else."""
    return value._body if type(value) is UnreadBag else None


def as_body(value):
    """The mapping a message body holds for ``value``.

    Bags are maps on the wire (cbor2 encodes a dict subclass as the map of its
    items, so a bag is not copied).  ``None`` becomes an empty map and any other
    non-mapping value ``v`` becomes ``{"result": v}``, so a handler may simply
    ``return a + b``.  An unread bag is decoded first.
    """
    if type(value) is dict or type(value) is DataBag:
        return value
    if value is None:
        return {}
    if type(value) is UnreadBag:
        value._load()
        return value
    if isinstance(value, Mapping):
        return value if type(value) is dict else dict(value)
    return {"result": value}
