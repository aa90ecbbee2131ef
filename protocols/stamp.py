"""Route stamps: one per hop, so a bag's path can be read from the bag itself."""

import attrs


@attrs.frozen
class Stamp:
    """What one hop (an actor or the dispatcher) records as a bag passes through.

    ``seq`` counts the bags this hop has stamped; ``(name, seq)`` is unique per
    running hop, which is the key bags are ordered by.  ``arrived`` and
    ``departed`` are wall-clock seconds since the epoch.  ``hop`` is one more
    than the previous stamp's.
    """

    name: str
    host: str
    pid: int
    conn: int
    seq: int
    arrived: float
    departed: float
    hop: int

    def to_wire(self):
        """The compact list form the envelope carries."""
        return [self.name, self.host, self.pid, self.conn, self.seq,
                self.arrived, self.departed, self.hop]

    @classmethod
    def from_wire(cls, item):
        """Rebuild a stamp from its list form.

        @raise ValueError: when ``item`` is not an 8-item stamp of the right types.
        """
        if not isinstance(item, list) or len(item) != 8:
            raise ValueError("a route stamp is a list of 8 fields")
        name, host, pid, conn, seq, arrived, departed, hop = item
        if not (isinstance(name, str) and isinstance(host, str)):
            raise ValueError("a route stamp's name and host are text")
        for number in (pid, conn, seq, hop):
            if not isinstance(number, int) or isinstance(number, bool):
                raise ValueError("a route stamp's pid, conn, seq and hop are integers")
        for when in (arrived, departed):
            if not isinstance(when, (int, float)) or isinstance(when, bool):
                raise ValueError("a route stamp's times are numbers")
        return cls(name, host, pid, conn, seq, float(arrived), float(departed), hop)

    def as_dict(self):
        """A plain dict, for printing routes as JSON."""
        return attrs.asdict(self)


def route_from_wire(items):
    """Rebuild a route (a tuple of stamps) from the envelope's list form."""
    if not isinstance(items, list):
        raise ValueError("a route is a list of stamps")
    return tuple(Stamp.from_wire(item) for item in items)
