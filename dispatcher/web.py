"""The monitoring endpoint: ``GET /metrics`` (Prometheus) and ``GET /status`` (JSON).

It listens on its own port, apart from the actors' frames, so a scraper or a
health check never queues behind requests and needs no actornet client.  Both
pages are computed from counters the dispatcher already keeps; neither touches
an actor.
"""

import json

from twisted.web.resource import Resource
from twisted.web.server import Site

from actornet.dispatcher.metrics import render


class MetricsPage(Resource):
    isLeaf = True

    def __init__(self, dispatcher):
        super().__init__()
        self.dispatcher = dispatcher

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return render(self.dispatcher.snapshot()).encode()


class StatusPage(Resource):
    isLeaf = True

    def __init__(self, dispatcher):
        super().__init__()
        self.dispatcher = dispatcher

    def render_GET(self, request):
        snapshot = self.dispatcher.snapshot()
        status = {"status": "ok", **snapshot.summary(), "services": sorted(snapshot.services)}
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(status).encode()


class IndexPage(Resource):
    """``/``: what this port serves, so a person who opens it in a browser knows."""

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (b"actornet dispatcher monitoring\n"
                b"  /metrics  Prometheus metrics (text format 0.0.4)\n"
                b"  /status   health and counts as JSON\n"
                b"Actors and clients connect on the dispatcher's listen endpoint, not here.\n")

    def getChild(self, path, request):
        return self if path == b"" else super().getChild(path, request)


def monitoring_site(dispatcher, root=None):
    """A ``Site`` serving ``/``, ``/metrics`` and ``/status`` for ``dispatcher``;
    ``root`` (a resource) replaces the plain index at ``/``, keeping those two."""
    root = IndexPage() if root is None else root
    root.putChild(b"metrics", MetricsPage(dispatcher))
    root.putChild(b"status", StatusPage(dispatcher))
    site = Site(root)
    site.noisy = False
    site.log = lambda request: None
    return site
