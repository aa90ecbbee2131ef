"""The health endpoint: ``/status`` and ``/metrics`` served from a thread.

The twisted.web monitoring endpoint answers on the reactor, so it is as slow as
the slowest thing the reactor runs: an actor in the dispatcher's process that
blocks for two seconds makes a probe wait two seconds, and a strict probe may
then restart a healthy process.  This endpoint is a small WSGI server in a
daemon thread of its own.  It never reads the dispatcher's tables: a
:class:`~actornet.dispatcher.watch.ReactorWatch` gives it snapshots, and when
the reactor is blocked it answers with the last one, saying so (``"status":
"stalled"`` and ``actornet_reactor_stalled_seconds``).
"""

import json
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from actornet.dispatcher import bearer
from actornet.dispatcher.exposition import metrics_registry, status_document

POLL_SECONDS = 0.1
"""How often the server's loop checks whether it was told to stop."""


class HealthServer:
    """Serves ``/status`` and ``/metrics`` for ``watch`` on ``host:port``.

    @param token: the token a request must present (``Authorization: Bearer``),
        or None for none.
    """

    def __init__(self, watch, host, port, token=None):
        self.watch = watch
        self.host = host
        self.port = port
        self.app = health_app(watch, token)
        self._server = None
        self._thread = None

    def listen(self):
        """Bind the port now (before twistd drops privileges); ``self.port`` is
        then the real port (``0`` picks one).

        @raise OSError: when the address cannot be bound."""
        server_class = _Server6 if ":" in self.host else _Server
        self._server = make_server(self.host, self.port, self.app, server_class=server_class,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_port

    def start(self):
        """Serve in a daemon thread (listening first, if not yet)."""
        if self._server is None:
            self.listen()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
            name=f"actornet health {self.host}:{self.port}", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop serving, close the port and wait for the thread (about
        ``POLL_SECONDS``); requests being answered finish on their own threads."""
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._server = None


def health_app(watch, token=None):
    """The WSGI application: ``/status`` (JSON) and ``/metrics`` (Prometheus)
    from ``watch``'s looks, behind ``token`` when one is given."""
    metrics = make_wsgi_app(metrics_registry(watch.look))

    def app(environ, start_response):
        problem = bearer.refusal(environ.get("HTTP_AUTHORIZATION"), token)
        if problem is not None:
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("WWW-Authenticate", bearer.CHALLENGE)])
            return [problem.encode() + b"\n"]
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"only GET\n"]
        if path == "/status":
            look = watch.look()
            code = "200 OK" if look.snapshot is not None else "503 Service Unavailable"
            start_response(code, [("Content-Type", "application/json")])
            return [json.dumps(status_document(look)).encode()]
        if path == "/metrics":
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"the health endpoint serves /status and /metrics\n"]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow client never holds up a probe."""

    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per request (probes come every few seconds)."""

    def log_message(self, format, *args):
        pass
