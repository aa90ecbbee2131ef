"""The management service ``mmi``, answered by the dispatcher itself.

Like NorFab's broker, the dispatcher answers questions about the network
without involving any actor, so they are answered even when every actor is
busy or gone: who is connected, how the dispatcher is doing, which versions
run, and a requested shutdown.
"""

import hmac
import platform
import sys

import cbor2
import twisted

from actornet.protocols.codes import Status

SERVICE = "mmi"
VERSION = "0.1.0"


class ManagementError(Exception):
    """A management request that cannot be carried out; ``status`` says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Management:
    """Answers ``mmi`` requests from the dispatcher's own state.

    @param on_shutdown: called (with no arguments) after a permitted shutdown
        request has been answered; the twistd plugin stops the reactor.
    """

    def __init__(self, dispatcher, on_shutdown=None):
        self.dispatcher = dispatcher
        self.on_shutdown = on_shutdown
        self.endpoints = ()
        self._methods = {
            "show_actors": self.show_actors,
            "show_dispatcher": self.show_dispatcher,
            "versions": self.versions,
            "shutdown": self.shutdown,
        }

    def answer(self, method, data):
        """The answer to ``mmi.<method>`` with request ``data``.

        @raise ManagementError: for an unknown method or a refused request.
        """
        handler = self._methods.get(method)
        if handler is None:
            known = ", ".join(sorted(self._methods))
            raise ManagementError(Status.UNKNOWN_METHOD,
                                  f"mmi has no method {method!r} (it has: {known})")
        return handler(data)

    def show_actors(self, data):
        """Every connected actor (and client, with ``clients: true``), filterable by
        ``service`` and ``name``."""
        dispatcher = self.dispatcher
        now = dispatcher.clock.seconds()
        holdtime = dispatcher.keepalive_interval * dispatcher.keepalive_multiplier
        service = data.get("service")
        name = data.get("name")
        clients = data.get("clients", False)
        rows = []
        for peer in sorted(dispatcher.registry.by_name.values(), key=lambda p: p.name):
            if not peer.services and not clients:
                continue
            if service is not None and service not in peer.services:
                continue
            if name is not None and peer.name != name:
                continue
            rows.append({
                "name": peer.name,
                "services": list(peer.services),
                "status": "alive",
                "connection": peer.conn_id,
                "alive_for": round(now - peer.connected_at, 3),
                "holdtime_left": round(max(0.0, holdtime - (now - peer.last_seen)), 3),
                "keepalives_sent": peer.keepalives_out,
                "keepalives_received": peer.keepalives_in,
                "in_flight": peer.in_flight,
                "handled": peer.handled,
                "bytes_in": peer.bytes_in,
                "bytes_out": peer.bytes_out,
            })
        return {"actors": rows}

    def summary(self):
        """The few numbers a health check needs (also served at ``/status``)."""
        dispatcher = self.dispatcher
        return {
            "name": dispatcher.name,
            "pid": dispatcher.pid,
            "uptime": round(dispatcher.clock.seconds() - dispatcher.started_at, 3),
            "connections": len(dispatcher.peers),
            "actors": sum(1 for peer in dispatcher.registry.by_name.values() if peer.services),
            "in_flight": len(dispatcher.inflight),
        }

    def show_dispatcher(self, data):
        dispatcher = self.dispatcher
        return {
            **self.summary(),
            "host": dispatcher.host,
            "endpoints": list(self.endpoints),
            "services": {service: sorted(peer.name for peer in peers)
                         for service, peers in sorted(dispatcher.registry.by_service.items())},
            "keepalive": {"interval": dispatcher.keepalive_interval,
                          "multiplier": dispatcher.keepalive_multiplier},
            "max_frame_bytes": dispatcher.max_frame,
            "hop_limit": dispatcher.hop_limit,
            "token_required": dispatcher.token is not None,
            "counters": dict(sorted(dispatcher.stats.items())),
        }

    def versions(self, data):
        return {
            "actornet": VERSION,
            "twisted": twisted.__version__,
            "cbor2": _version_of("cbor2", cbor2),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }

    def shutdown(self, data):
        """Stop the dispatcher's process; needs ``token`` when the dispatcher has one."""
        token = self.dispatcher.token
        if token is not None:
            offered = data.get("token")
            if not isinstance(offered, str) or not hmac.compare_digest(
                    offered.encode(), token.encode()):
                raise ManagementError(Status.UNAUTHORIZED, "shutdown needs the token")
        if self.on_shutdown is None:
            raise ManagementError(Status.FAILURE, "this dispatcher cannot be shut down remotely")
        self.dispatcher.clock.callLater(0.1, self.on_shutdown)
        return {"stopping": True}


def _version_of(name, module):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return getattr(module, "__version__", "unknown")
