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
    In a federation it also holds the other dispatchers' actors
    (:class:`~actornet.dispatcher.remote.RemoteActor`), kept apart by service
    so that ``any`` can prefer an idle local actor; ``remote_services`` are the
    services the other dispatchers' actors have ever served, and
    ``federation_down`` says why remote actors cannot be reached now (None
    while they can, or without a federation).
    """

    def __init__(self):
        self.by_name = {}
        self.by_service = {}
        self.remote_by_service = {}
        self.known_services = set()
        self.remote_services = set()
        self.federation_down = None
        self._turn = 0

    def add(self, peer):
        """Register ``peer`` under its name; the caller has checked the name is free."""
        self._index(peer, self.by_service, self.known_services)

    def remove(self, peer):
        """Forget ``peer``; a peer that never registered is ignored."""
        self._forget(peer, self.by_service)

    def add_remote(self, actor):
        """Register another dispatcher's actor; False (and nothing changes) when its
        name is held here already."""
        if actor.name in self.by_name:
            return False
        self._index(actor, self.remote_by_service, self.remote_services)
        return True

    def remove_remote(self, actor):
        """Forget another dispatcher's actor; one not registered here is ignored."""
        self._forget(actor, self.remote_by_service)

    def _index(self, actor, by_service, served):
        self.by_name[actor.name] = actor
        for service in actor.services:
            by_service.setdefault(service, []).append(actor)
            served.add(service)

    def _forget(self, actor, by_service):
        if self.by_name.get(actor.name) is not actor:
            return
        del self.by_name[actor.name]
        for service in actor.services:
            workers = by_service.get(service)
            if workers and actor in workers:
                workers.remove(actor)
                if not workers:
                    del by_service[service]

    def workers(self, service):
        """Every live actor serving ``service``, local ones first.

        @raise RoutingError: UNKNOWN_SERVICE if no actor ever served it,
            NO_WORKERS if none serves it now, FEDERATION_DOWN if none serves it
            here and the other dispatchers cannot be reached.
        """
        workers = self.by_service.get(service)
        remote = self.remote_by_service.get(service)
        if remote:
            return workers + remote if workers else remote
        if workers:
            return workers
        self._none_for(service)

    def _none_for(self, service):
        if self.federation_down is not None:
            raise RoutingError(Status.FEDERATION_DOWN,
                               f"no actor here serves {service!r}, and the other dispatchers "
                               f"cannot be reached: {self.federation_down}")
        if service in self.known_services or service in self.remote_services:
            raise RoutingError(Status.NO_WORKERS, f"no actor serves {service!r} now")
        raise RoutingError(Status.UNKNOWN_SERVICE, f"no actor has ever served {service!r}")

    def least_busy(self, service):
        """The actor of ``service`` with the fewest requests in flight.

        Actors whose outbound buffer is over its limit are skipped; ties go
        round-robin so equal actors share the load.  An idle local actor is
        taken at once; otherwise the other dispatchers' actors compete on their
        :attr:`~actornet.dispatcher.remote.RemoteActor.busyness`.
        """
        remote = self.remote_by_service.get(service)
        workers = self.by_service.get(service)
        if not workers:
            if not remote:
                self._none_for(service)
            workers = ()
        best = self._least_busy_local(workers)
        if remote and (best is None or best.in_flight):
            best = self._least_busy_remote(remote, best)
        if best is None:
            raise RoutingError(
                Status.BUSY, f"every actor of {service!r} is over its outbound limit")
        return best

    def _least_busy_local(self, workers):
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
        return best

    def _least_busy_remote(self, remote, best):
        least = None if best is None else best.in_flight
        count = len(remote)
        for i in range(count):
            actor = remote[(self._turn + i) % count]
            if actor.outbound.over_limit:
                continue
            if least is None or actor.busyness < least:
                best, least = actor, actor.busyness
        return best

    def named(self, service, names):
        """The actors called ``names``, each of which must serve ``service``."""
        self.workers(service)
        chosen = []
        for name in names:
            peer = self.by_name.get(name)
            if peer is None and self.federation_down is not None:
                raise RoutingError(Status.FEDERATION_DOWN,
                                   f"no actor called {name!r} is here, and the other "
                                   f"dispatchers cannot be reached: {self.federation_down}")
            if peer is None or service not in peer.services:
                raise RoutingError(
                    Status.NO_WORKERS, f"no actor called {name!r} serves {service!r} now")
            chosen.append(peer)
        return chosen
