"""Bags' routes as timelines, from the dispatcher's journal: the pictures
``actornet trace --svg`` draws, served to the dashboard.

- ``GET /trace.svg?key=SERVER:SEQ``: the timeline of the bag under that key;
- ``GET /trace.svg?last=N``: the N newest bags' timelines, one under the other;
- ``GET /traces.json?n=N``: the N newest bags' keys (with service, method,
  time and hop count), for the page's list to click.

A key that is not ``SERVER:SEQ``, or an N outside 1..``MAX_LAST``, is a 400
with a line naming the problem; a key the journal does not hold (never kept,
or dropped by its bounds) and a dispatcher without a journal are 404s.  The
journal is read off the reactor thread, as every journal query is.
"""

import json

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from actornet.trace import keys_from_journal, routes_from_journal, timeline
from actornet.trace_svg import as_svg

MAX_LAST = 50
"""The most bags one request may draw or list."""

NO_JOURNAL = ('this dispatcher keeps no journal, so there are no bags to trace '
              '(set journal = "PATH" in its [dispatcher] table)')


class BadQuery(Exception):
    """A query the trace pages cannot answer; ``code`` is its HTTP status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def parse_key(text):
    """``(server, seq)`` from ``SERVER:SEQ`` (the server's name may hold colons).

    @raise BadQuery: 400, naming what is wrong.
    """
    server, colon, seq = text.rpartition(":")
    if not colon or not server or not _whole(seq):
        raise BadQuery(400, f"a bag's key is SERVER:SEQ (e.g. dispatcher:42), not {text!r}")
    return server, int(seq)


def parse_count(text, name):
    """``int(text)`` when it is a whole number from 1 to ``MAX_LAST``.

    @raise BadQuery: 400, naming the parameter ``name``.
    """
    if not _whole(text) or not 1 <= int(text) <= MAX_LAST:
        raise BadQuery(400, f"{name} is a whole number from 1 to {MAX_LAST}, not {text!r}")
    return int(text)


def _whole(text):
    """Whether ``text`` is a whole number SQLite can hold: ASCII digits (``"²"``
    is a digit to Python, not a number), at most 18 of them."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _argument(request, name):
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


class JournalPage(Resource):
    """What the trace pages share: reading the journal off the reactor,
    answering bad queries with a clear line, and not writing to a browser
    that left."""

    isLeaf = True
    log = Logger()
    content_type = b"text/plain"

    def __init__(self, journal, dispatchers):
        """``journal``: the dispatcher's journal or None; ``dispatchers``:
        ``() -> names`` of the network's dispatchers (their hops are drawn as such)."""
        super().__init__()
        self.journal = journal
        self.dispatchers = dispatchers

    def render_GET(self, request):
        try:
            if self.journal is None:
                raise BadQuery(404, NO_JOURNAL)
            reading = self.read(request)
        except BadQuery as e:
            return _refuse(request, e)
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(body):
            if gone:
                return
            request.setHeader(b"content-type", self.content_type)
            request.setHeader(b"cache-control", b"no-cache")
            request.write(body)
            request.finish()

        def failed(failure):
            if failure.check(BadQuery):
                body = _refuse(request, failure.value)
            else:
                self.log.failure("the dashboard could not read the journal", failure)
                request.setResponseCode(500)
                body = f"the journal could not be read: {failure.getErrorMessage()}\n".encode()
            if not gone:
                request.write(body)
                request.finish()

        reading.addCallback(self.present).addCallbacks(answer, failed)
        return NOT_DONE_YET

    def read(self, request):
        """A Deferred of the journal's answer for ``request``, or BadQuery."""
        raise NotImplementedError

    def present(self, answer):
        """The response body (bytes) for the journal's ``answer``."""
        raise NotImplementedError


def _refuse(request, error):
    request.setResponseCode(error.code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return f"{error}\n".encode()


class TraceSvg(JournalPage):
    """``/trace.svg?key=SERVER:SEQ`` or ``/trace.svg?last=N``."""

    content_type = b"image/svg+xml"

    def read(self, request):
        key, last = _argument(request, "key"), _argument(request, "last")
        if (key is None) == (last is None):
            raise BadQuery(400, "/trace.svg needs either key=SERVER:SEQ or last=N")
        if key is not None:
            server, seq = parse_key(key)
            return self.journal.get(server, seq).addCallback(_found, key)
        return self.journal.last(parse_count(last, "last")).addCallback(
            lambda bags: {"bags": bags})

    def present(self, answer):
        routes = routes_from_journal(answer)
        titles = keys_from_journal(answer) or [route[0].name if route else "(empty)"
                                               for route in routes]
        names = frozenset(self.dispatchers())
        return as_svg([(title, timeline(route, names))
                       for title, route in zip(titles, routes, strict=True)]).encode()


def _found(bag, key):
    if bag is None:
        raise BadQuery(404, f"the journal holds no bag under {key} (never kept, or "
                            f"dropped by its size and age bounds)")
    return bag


class TraceList(JournalPage):
    """``/traces.json?n=N``: the newest bags' keys, newest first."""

    content_type = b"application/json"

    def read(self, request):
        n = _argument(request, "n")
        return self.journal.last(20 if n is None else parse_count(n, "n"))

    def present(self, bags):
        return json.dumps([{"key": f"{bag['key'][0]}:{bag['key'][1]}", "at": bag["at"],
                            "service": bag["service"], "method": bag["method"],
                            "hops": len(bag["route"])} for bag in bags]).encode()
