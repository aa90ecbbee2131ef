"""The monitoring endpoint: ``GET /metrics`` (Prometheus) and ``GET /status`` (JSON).

It listens on its own port, apart from the actors' frames, so a scraper or a
health check never queues behind requests and needs no actornet client.  Both
pages are computed from counters the dispatcher already keeps; neither touches
an actor.  ``/metrics`` is ``prometheus_client``'s Twisted resource, which
collects in the reactor's thread pool, so it reads snapshots through a
:class:`~actornet.dispatcher.watch.ReactorWatch`.  Both answer on the reactor,
and wait while it is blocked: :mod:`~actornet.dispatcher.health` answers
regardless.
"""

import json

from twisted.web.resource import Resource
from twisted.web.server import Site

from actornet.dispatcher import bearer
from actornet.dispatcher.exposition import Look, metrics_registry, status_document
from actornet.dispatcher.watch import ReactorWatch


class StatusPage(Resource):
    isLeaf = True

    def __init__(self, dispatcher):
        super().__init__()
        self.dispatcher = dispatcher

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(status_document(Look(self.dispatcher.snapshot()))).encode()


class TokenGuard(Resource):
    """``page`` for requests that present ``token`` (see :mod:`bearer`); a 401
    with the one-line reason for the others."""

    isLeaf = True

    def __init__(self, page, token):
        super().__init__()
        self.page = page
        self.token = token

    def render(self, request):
        given = request.getHeader(b"authorization")
        problem = bearer.refusal(given.decode("latin-1") if given else None, self.token)
        if problem is None:
            return self.page.render(request)
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", bearer.CHALLENGE.encode())
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return problem.encode() + b"\n"


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


def monitoring_site(dispatcher, watch=None, token=None, root=None):
    """A ``Site`` serving ``/``, ``/metrics`` and ``/status`` for ``dispatcher``.

    @param watch: the :class:`~actornet.dispatcher.watch.ReactorWatch` that
        ``/metrics`` reads; by default one over the global reactor (the one
        ``prometheus_client``'s resource runs on) without a heartbeat.
    @param token: the token ``/metrics`` and ``/status`` require, or None.
    @param root: a resource replacing the plain index at ``/`` (the dashboard),
        keeping those two.
    """
    # Imported here: the resource imports the global reactor, which must not be
    # installed as a side effect of loading this module (twistd picks it later).
    from prometheus_client.twisted import MetricsResource

    if watch is None:
        from twisted.internet import reactor

        watch = ReactorWatch(reactor, dispatcher.snapshot)
    root = IndexPage() if root is None else root
    for name, page in ((b"metrics", MetricsResource(metrics_registry(watch.look))),
                       (b"status", StatusPage(dispatcher))):
        root.putChild(name, page if token is None else TokenGuard(page, token))
    site = Site(root)
    site.noisy = False
    site.log = lambda request: None
    return site
