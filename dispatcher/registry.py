"""Who is connected, under which name, serving which services."""

from actornet.protocols.codes import Status


class RoutingError(Exception):
    """No actor can take a request; ``status`` says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Registry:
    """Actors by unique name and by service.

    Peers are the dispatcher's per-connection records; the registry only needs
    their ``name``, ``services``, ``in_flight`` and ``outbound`` attributes.
    """

    def __init__(self):
        self.by_name = {}
        self.by_service = {}
        self.known_services = set()
        self._turn = 0

    def add(self, peer):
        """Register ``peer`` under its name; the caller has checked the name is free."""
        self.by_name[peer.name] = peer
        for service in peer.services:
            self.by_service.setdefault(service, []).append(peer)
            self.known_services.add(service)

    def remove(self, peer):
        """Forget ``peer``; a peer that never registered is ignored."""
        if self.by_name.get(peer.name) is not peer:
            return
        del self.by_name[peer.name]
        for service in peer.services:
            workers = self.by_service.get(service)
            if workers and peer in workers:
                workers.remove(peer)
                if not workers:
                    del self.by_service[service]

    def workers(self, service):
        """Every live actor serving ``service``.

        @raise RoutingError: UNKNOWN_SERVICE if no actor ever served it,
            NO_WORKERS if none serves it now.
        """
        workers = self.by_service.get(service)
        if workers:
            return workers
        if service in self.known_services:
            raise RoutingError(Status.NO_WORKERS, f"no actor serves {service!r} now")
        raise RoutingError(Status.UNKNOWN_SERVICE, f"no actor has ever served {service!r}")

    def least_busy(self, service):
        """The actor of ``service`` with the fewest requests in flight.

        Actors whose outbound buffer is over its limit are skipped; ties go
        round-robin so equal actors share the load.
        """
        workers = self.workers(service)
        count = len(workers)
        self._turn += 1
        best = None
        for i in range(count):
            peer = workers[(self._turn + i) % count]
            if peer.outbound.over_limit:
                continue
            if best is None or peer.in_flight < best.in_flight:
                best = peer
                if not best.in_flight:
                    break
        if best is None:
            raise RoutingError(
                Status.BUSY, f"every actor of {service!r} is over its outbound limit")
        return best

    def named(self, service, names):
        """The actors called ``names``, each of which must serve ``service``."""
        self.workers(service)
        chosen = []
        for name in names:
            peer = self.by_name.get(name)
            if peer is None or service not in peer.services:
                raise RoutingError(
                    Status.NO_WORKERS, f"no actor called {name!r} serves {service!r} now")
            chosen.append(peer)
        return chosen
