"""A bag's route as a timeline: where its time went, hop by hop.

A route says when each hop received a bag and when it let go of it; what a
reader wants from it is the shape: which hops held the bag, how long it spent
between hops (on the wire and in queues), and which of those dominate.
:func:`timeline` computes that once, as plain numbers, and :func:`draw`,
:func:`timeline_rows`, :func:`as_json` (and :func:`actornet.trace_svg.as_svg`)
only present it, so every drawing shows the same figures.
:func:`routes_from_journal` and :func:`keys_from_journal` read the routes
(and their keys) out of the journal service's answers, for ``actornet trace``
and the dashboard alike.

Which hops are dispatchers is decided by name: the caller passes the names of
the network's dispatchers (``actornet`` asks ``mmi dispatchers`` for them).
Guessing from the shape of the route (dispatcher stamps alternating with
actor stamps) is not sound: in a federation a bag crosses two dispatchers in a
row, and a route read from a journal may start anywhere.

Times in a stamp are the wall clock of the host that made it, so between
hosts a gap is only as exact as their clocks agree; a negative gap means they
disagree, and is shown as it is rather than hidden.
"""

import math
from functools import partial

import attrs
from rich.measure import Measurement
from rich.text import Text

from actornet.console import Rows, plain
from actornet.protocols.errors import ActornetError
from actornet.protocols.stamp import Stamp

DISPATCHERS = frozenset({"dispatcher"})
"""The dispatcher's name unless its config gives another."""

SLOW_SHARE = 0.3
"""A hop whose time (the gap before it plus the time it held the bag) is at
least this share of the whole route's is slow."""

BAR_WIDTH = 40
"""Characters of a text timeline's bar, whatever the route's duration."""
MIN_BAR_WIDTH = 12
"""Characters of a terminal's bar at the least, when its table is squeezed."""

WIRE, HELD = ".", "#"


@attrs.frozen
class Hop:
    """One row of a timeline; times in milliseconds.

    ``offset_ms`` is when the hop received the bag, counted from the first
    stamp's arrival; ``gap_ms`` the time since the previous hop let go of it
    (0 for the first hop); ``held_ms`` how long this hop kept it.
    """

    hop: int
    name: str
    host: str
    pid: int
    kind: str
    offset_ms: float
    gap_ms: float
    held_ms: float
    slow: bool

    @property
    def where(self):
        return f"{self.host}:{self.pid}"

    @property
    def spent_ms(self):
        """What this hop added to the bag's trip: its gap and its hold."""
        return self.gap_ms + self.held_ms


@attrs.frozen
class Timeline:
    """A route's hops in route order, and its length: from the first stamp's
    arrival to the last departure (ms)."""

    hops: tuple
    total_ms: float


def timeline(route, dispatchers=DISPATCHERS, *, slow_ms=None, slow_share=SLOW_SHARE):
    """The timeline of ``route`` (a sequence of :class:`~actornet.protocols.stamp.Stamp`).

    A hop is of kind ``"dispatcher"`` when its name is in ``dispatchers``, else
    ``"actor"`` (clients included).  It is slow when its held time or its gap
    reaches ``slow_ms`` (when given), or when its gap and held time together
    are at least ``slow_share`` of the route's total; a share and not a rank,
    so a route whose hops are all quick marks none.  An empty route is an
    empty timeline.
    """
    if not route:
        return Timeline((), 0.0)
    start = route[0].arrived
    total_ms = max(_ms(stamp.departed - start) for stamp in route)
    hops, previous = [], None
    for stamp in route:
        gap_ms = 0.0 if previous is None else _ms(stamp.arrived - previous.departed)
        hops.append(Hop(stamp.hop, stamp.name, stamp.host, stamp.pid,
                        "dispatcher" if stamp.name in dispatchers else "actor",
                        _ms(stamp.arrived - start), gap_ms,
                        _ms(stamp.departed - stamp.arrived), False))
        previous = stamp
    marked = tuple(attrs.evolve(hop, slow=_slow(hop, total_ms, slow_ms, slow_share))
                   for hop in hops)
    return Timeline(marked, total_ms)


def _ms(seconds):
    return seconds * 1000


def _slow(hop, total_ms, slow_ms, slow_share):
    if slow_ms is not None and max(hop.held_ms, hop.gap_ms) >= slow_ms:
        return True
    return total_ms > 0 and hop.spent_ms >= slow_share * total_ms


def bar(hop, total_ms, width=BAR_WIDTH):
    """The hop's bar: blanks up to the previous hop's departure, ``.`` for the
    gap, ``#`` for the time held, on a scale where ``width`` characters are
    ``total_ms``.  A hop shows at least one ``#``, however short its hold,
    so none vanishes from the drawing."""
    def column(ms):
        if total_ms <= 0:
            return 0
        return min(max(math.floor(ms / total_ms * width + 0.5), 0), width)

    left = column(hop.offset_ms - hop.gap_ms)
    arrived = max(column(hop.offset_ms), left)
    departed = max(column(hop.offset_ms + hop.held_ms), arrived + 1)
    return (" " * left + WIRE * (arrived - left) + HELD * (departed - arrived)).ljust(width)


COLUMNS = ("HOP", "NAME", "HOST:PID", "KIND", "+MS", "GAP MS", "HELD MS")
NUMERIC = frozenset({0, 4, 5, 6})
SLOW_MARK = "<< slow"


def _numbers(hop):
    return [str(hop.hop), hop.name, hop.where, hop.kind, f"{hop.offset_ms:.3f}",
            f"{hop.gap_ms:.3f}", f"{hop.held_ms:.3f}"]


def _scale(trace, width):
    return f"0{f'{trace.total_ms:.3f} ms': >{width - 1}}"


def draw(trace, *, width=BAR_WIDTH):
    """The timeline as plain text, one row per hop under a header: the
    numbers, then the hop's :func:`bar` between ``|``, then ``<< slow`` on
    slow hops.  This is what a pipe or a file gets; a terminal gets
    :func:`timeline_rows` as a table."""
    return plain(Rows(
        titles=[*COLUMNS, f"|{_scale(trace, width)}|", ""], numeric=NUMERIC,
        cells=[[*_numbers(hop), f"|{bar(hop, trace.total_ms, width)}|",
                SLOW_MARK if hop.slow else ""] for hop in trace.hops]))


def timeline_rows(trace):
    """The timeline as a table for a terminal: the numbers, the bar (its
    column titled with the scale, both drawn to the column's width) and the
    slow mark; slow rows red, dispatcher rows dim."""
    return Rows(titles=[*COLUMNS, ToScale(lambda width: _scale(trace, width)), ""],
                numeric=NUMERIC,
                cells=[[*_numbers(hop), ToScale(partial(bar, hop, trace.total_ms)),
                        SLOW_MARK if hop.slow else ""] for hop in trace.hops],
                styles=["bold red" if hop.slow else "dim" if hop.kind == "dispatcher" else ""
                        for hop in trace.hops])


@attrs.frozen
class ToScale:
    """A rich renderable: ``draw(width)``'s text at the width its table
    column gets (asking for ``MIN_BAR_WIDTH`` to ``BAR_WIDTH``), so a narrow
    terminal gets a shorter bar, still to scale, rather than a folded one."""

    draw: object

    def __rich_measure__(self, console, options):
        return Measurement(MIN_BAR_WIDTH, BAR_WIDTH)

    def __rich_console__(self, console, options):
        yield Text(self.draw(min(options.max_width, BAR_WIDTH)), no_wrap=True)


def as_json(trace):
    """The timeline as JSON-ready data: ``total_ms`` and one dict per hop with
    every :class:`Hop` field and ``where``."""
    return {"total_ms": trace.total_ms,
            "hops": [{**attrs.asdict(hop), "where": hop.where} for hop in trace.hops]}


def keys_from_journal(answer):
    """The journal keys (``SERVER:SEQ``) of the bags in its answer, or None when
    a bag has none (the drawing then titles it by its first stamp)."""
    bags = answer.get("bags", [answer])
    keys = [bag.get("key") for bag in bags]
    if not all(isinstance(key, list) and len(key) == 2 for key in keys):
        return None
    return [f"{server}:{seq}" for server, seq in keys]


def routes_from_journal(answer):
    """The routes in the journal's answer: ``{"bags": [bag, ...]}`` (``last``) or
    one bag (``get``), each bag a dict whose ``"route"`` lists its stamps in
    their wire form or as :meth:`Stamp.as_dict` gives them.

    @raise ActornetError: the answer is not shaped so.
    """
    bags = answer.get("bags", [answer]) if isinstance(answer, dict) else None
    try:
        return [tuple(Stamp.from_wire(item) if isinstance(item, bytes) else Stamp(**item)
                      for item in bag["route"]) for bag in bags]
    except (TypeError, KeyError, ValueError) as e:
        raise ActornetError(f"the journal's answer holds no routes: {e}") from e
