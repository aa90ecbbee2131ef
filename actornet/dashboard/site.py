"""The dashboard at the dispatcher's HTTP port: its pages wired to one dispatcher.

``/`` is the page (static files shipped in this package: ``index.html``,
``dashboard.js``, ``dashboard.css``; no build step and nothing fetched from
elsewhere), ``/events`` the live pictures (:mod:`~actornet.dashboard.stream`),
``/picture.json`` one picture, ``/trace.svg`` and ``/traces.json`` bags'
timelines from the journal (:mod:`~actornet.dashboard.traces`).  ``/metrics``
and ``/status`` stay the monitoring pages they are
(:func:`~actornet.dispatcher.web.monitoring_site` adds them).
"""

from pathlib import Path

from twisted.application.service import Service
from twisted.web.static import File

from actornet.dashboard.lifecycle import LifecycleLog
from actornet.dashboard.picture import PictureMaker
from actornet.dashboard.stream import EventStream, PictureFeed, PictureNow
from actornet.dashboard.traces import TraceList, TraceSvg

STATIC = Path(__file__).resolve().parent / "static"
"""The page's files, installed with the package (setup.cfg's package_data)."""


class Dashboard(Service):
    """The dashboard of ``dispatcher``; while running it hears the dispatcher's
    own events, and stopping it ends every open event stream.

    @param clock: the reactor, or a ``Clock`` in tests.
    """

    def __init__(self, dispatcher, clock, **feed_options):
        self.dispatcher = dispatcher
        self.lifecycle = LifecycleLog(clock, self._death)
        self.pictures = PictureMaker(dispatcher.snapshot, self.lifecycle,
                                     journal=dispatcher.journal is not None)
        self.feed = PictureFeed(clock, self.pictures.picture, **feed_options)

    def _death(self):
        self.feed.send_soon()

    def startService(self):
        super().startService()
        self.dispatcher.lifecycle_listeners.append(self.lifecycle.listen)

    def stopService(self):
        if self.lifecycle.listen in self.dispatcher.lifecycle_listeners:
            self.dispatcher.lifecycle_listeners.remove(self.lifecycle.listen)
        self.feed.stop()
        return super().stopService()

    def dispatcher_names(self):
        """This dispatcher's name and, in a federation, the others'."""
        federation = self.dispatcher.snapshot().federation
        others = [row["name"] for row in federation["dispatchers"]] if federation else []
        return [self.dispatcher.name, *others]

    def root(self):
        """The resource for ``/`` and everything under it but ``/metrics`` and ``/status``."""
        root = File(str(STATIC), defaultType="application/octet-stream")
        root.contentTypes = {**root.contentTypes, ".js": "text/javascript",
                             ".css": "text/css"}
        root.indexNames = ["index.html"]
        root.putChild(b"events", EventStream(self.feed))
        root.putChild(b"picture.json", PictureNow(self.feed))
        journal = self.dispatcher.journal
        root.putChild(b"trace.svg", TraceSvg(journal, self.dispatcher_names))
        root.putChild(b"traces.json", TraceList(journal, self.dispatcher_names))
        return root
