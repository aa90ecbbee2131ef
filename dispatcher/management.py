"""The management service ``mmi``, answered by the dispatcher itself.

Like NorFab's broker, the dispatcher answers questions about the network
without involving any actor, so they are answered even when every actor is
busy or gone: who is connected, how the dispatcher is doing, which versions
run, and a requested shutdown.
"""

import hmac
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import twisted

from actornet.protocols.codes import Status

SERVICE = "mmi"


class ManagementError(Exception):
    """A management request that cannot be carried out; ``status`` says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Management:
    """Answers ``mmi`` requests from snapshots of the dispatcher.

    @param snapshot: returns a fresh :class:`~actornet.dispatcher.snapshot.Snapshot`.
    @param on_shutdown: called (with no arguments) shortly after a permitted
        shutdown request has been answered; None when the process cannot be
        shut down remotely.
    """

    def __init__(self, clock, snapshot, token=None, on_shutdown=None, announce=None):
        self.clock = clock
        self.snapshot = snapshot
        self.token = token
        self.on_shutdown = on_shutdown
        self.announce = announce
        self._methods = {
            "show_actors": self.show_actors,
            "show_dispatcher": self.show_dispatcher,
            "dispatchers": self.dispatchers,
            "serving": self.serving,
            "versions": self.versions,
            "shutdown": self.shutdown,
            "supervisor_event": self.supervisor_event,
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
        snapshot = self.snapshot()
        holdtime = snapshot.settings.liveness.holdtime
        service = data.get("service")
        name = data.get("name")
        clients = data.get("clients", False)
        rows = []
        for peer in sorted(snapshot.peers, key=lambda p: p.name):
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
                "dispatcher": snapshot.name,
                "connection": peer.connection,
                "alive_for": round(snapshot.now - peer.connected_at, 3),
                "holdtime_left": round(max(0.0, holdtime - (snapshot.now - peer.last_seen)), 3),
                "keepalives_sent": peer.keepalives_out,
                "keepalives_received": peer.keepalives_in,
                "in_flight": peer.in_flight,
                "handled": peer.handled,
                "bytes_in": peer.bytes_in,
                "bytes_out": peer.bytes_out,
            })
        federation = snapshot.federation
        for actor in federation["actors"] if federation is not None else ():
            if (service is None or service in actor["services"]) and (
                    name is None or actor["name"] == name):
                rows.append({**actor, "status": "alive"})
        rows.sort(key=lambda row: row["name"])
        return {"actors": rows}

    def serving(self, data):
        """The actors that serve ``service`` now, anywhere in the network, and whether
        any ever did (so a caller can tell ``unknown_service`` from ``no_workers``
        before it sends anything)."""
        service = data.get("service")
        if not isinstance(service, str):
            raise ManagementError(Status.MALFORMED_BODY, "serving needs {service: NAME}")
        snapshot = self.snapshot()
        names = snapshot.serving(service)
        federation = snapshot.federation
        for actor in federation["actors"] if federation is not None else ():
            if service in actor["services"]:
                names.append(actor["name"])
        return {"service": service, "actors": sorted(names),
                "known": service in snapshot.known_services}

    def dispatchers(self, data):
        """Every dispatcher of the network, this one first, with health and load."""
        snapshot = self.snapshot()
        own = {"name": snapshot.name, "status": "alive", "host": snapshot.host,
               "pid": snapshot.pid, "self": True, **snapshot.summary()}
        federation = snapshot.federation
        if federation is None:
            return {"network": None, "connected": False, "dispatchers": [own]}
        return {"network": federation["network"], "connected": federation["connected"],
                "down": federation["down"], "dispatchers": [own, *federation["dispatchers"]]}

    def show_dispatcher(self, data):
        snapshot = self.snapshot()
        settings = snapshot.settings
        return {
            **snapshot.summary(),
            "host": snapshot.host,
            "endpoints": list(snapshot.endpoints),
            "services": snapshot.services,
            "keepalive": {"interval": settings.keepalive_interval,
                          "multiplier": settings.keepalive_multiplier},
            "max_frame_bytes": settings.max_frame_bytes,
            "hop_limit": settings.hop_limit,
            "token_required": settings.token is not None,
            "counters": dict(sorted(snapshot.counters.items())),
        }

    def versions(self, data):
        return {
            "actornet": installed_version("actornet"),
            "twisted": twisted.__version__,
            "cbor2": installed_version("cbor2"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }

    def shutdown(self, data):
        """Stop the dispatcher's process; needs ``token`` when the dispatcher has one."""
        if self.token is not None:
            offered = data.get("token")
            if not isinstance(offered, str) or not hmac.compare_digest(
                    offered.encode(), self.token.encode()):
                raise ManagementError(Status.UNAUTHORIZED, "shutdown needs the token")
        if self.on_shutdown is None:
            raise ManagementError(Status.FAILURE, "this dispatcher cannot be shut down remotely")
        self.clock.callLater(0.1, self.on_shutdown)
        return {"stopping": True}


    def supervisor_event(self, data):
        """A supervisor in another process reports a restart or a give-up; the
        dispatcher publishes it on ``actornet.supervisor`` (a topic no peer may
        publish on itself)."""
        if data.get("event") not in ("restarting", "gave_up") or not isinstance(
                data.get("name"), str) or self.announce is None:
            raise ManagementError(Status.MALFORMED_BODY,
                                  "a supervisor event is {event: restarting|gave_up, name, ...}")
        self.announce(data)
        return {}


def installed_version(distribution):
    """The version of an installed distribution, from its metadata."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"
