"""Pictures to browsers as server-sent events (``text/event-stream``).

One :class:`PictureFeed` makes a picture every ``interval`` seconds while at
least one browser listens (and none when nobody does), and one at once
(coalesced, on the next turn of the reactor) when an actor dies; each picture
is encoded once and written to every open stream.  Streams are bounded: past
``max_streams`` a new one is refused with 503 and a line saying why, so the
page cannot be used to exhaust the dispatcher.  A stream is forgotten when
its browser goes (``request.notifyFinish()``); stopping the feed ends every
stream.
"""

import json

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

INTERVAL = 1.0
"""Seconds between pictures."""

MAX_STREAMS = 32
"""Open event streams allowed at once."""

RETRY_MS = 2000
"""How long a browser waits before reconnecting a lost stream (the ``retry:`` field)."""


def event_frame(picture):
    """One server-sent event carrying ``picture`` as JSON (``event: picture``).

    JSON as ``json.dumps`` writes it holds no newline, so it fits one ``data:`` line.
    """
    return b"event: picture\ndata: " + json.dumps(picture).encode() + b"\n\n"


class PictureFeed:
    """The open streams and the timer that feeds them.

    @param clock: the reactor, or a ``Clock`` in tests.
    @param make_picture: ``() -> dict``, e.g. :meth:`PictureMaker.picture
        <actornet.dashboard.picture.PictureMaker.picture>`.
    """

    log = Logger()

    def __init__(self, clock, make_picture, *, interval=INTERVAL, max_streams=MAX_STREAMS):
        self.clock = clock
        self.make_picture = make_picture
        self.interval = interval
        self.max_streams = max_streams
        self.streams = set()
        self.latest = None
        self._ticker = None
        self._soon = None

    @property
    def full(self):
        return len(self.streams) >= self.max_streams

    def picture(self):
        """A fresh picture, remembered as :attr:`latest`."""
        self.latest = self.make_picture()
        return self.latest

    def add(self, request):
        """Start streaming to ``request``: the current picture at once, then each new one."""
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-accel-buffering", b"no")
        self.streams.add(request)
        request.notifyFinish().addBoth(lambda _: self._gone(request))
        request.write(b"retry: %d\n\n" % RETRY_MS)
        request.write(event_frame(self.latest if self._ticker is not None else self.picture()))
        if self._ticker is None:
            self._ticker = LoopingCall(self.send)
            self._ticker.clock = self.clock
            self._ticker.start(self.interval, now=False).addErrback(
                lambda f: self.log.failure("the dashboard's picture timer stopped", f))

    def _gone(self, request):
        self.streams.discard(request)
        if not self.streams and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def send(self):
        """Make a picture and write it to every open stream."""
        if not self.streams:
            return
        try:
            frame = event_frame(self.picture())
        except Exception:
            self.log.failure("the dashboard could not make a picture")
            return
        for request in list(self.streams):
            request.write(frame)

    def send_soon(self):
        """Send a picture on the next turn of the reactor (an actor died): several
        deaths at once give one picture, and none is made inside the
        dispatcher's own handling of a lost connection."""
        if self._soon is None or not self._soon.active():
            self._soon = self.clock.callLater(0, self.send)

    def stop(self):
        """End every stream and the timer."""
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        for request in list(self.streams):
            request.finish()
        self.streams.clear()
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None


class EventStream(Resource):
    """``GET /events``: the feed's pictures as ``text/event-stream``."""

    isLeaf = True

    def __init__(self, feed):
        super().__init__()
        self.feed = feed

    def render_GET(self, request):
        if self.feed.full:
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.setHeader(b"retry-after", b"5")
            return (f"too many dashboard streams are open (the limit is "
                    f"{self.feed.max_streams}); close one and retry\n").encode()
        self.feed.add(request)
        return NOT_DONE_YET


class PictureNow(Resource):
    """``GET /picture.json``: one picture, for scripts and for a page without
    event streams."""

    isLeaf = True

    def __init__(self, feed):
        super().__init__()
        self.feed = feed

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        return json.dumps(self.feed.picture()).encode()
