"""Replay a recorded incident against actors in memory, and say what answers differ.

    differences = await replay("incident.db", actors=[Pricer("pricer-1")])
    assert differences == []

A dispatcher with a journal (``journal = "PATH"``) records every request and
answer it routes.  :func:`replay` reads such a file
(:mod:`~actornet.testing.recording`), runs the given actors in a memory-mode
:class:`~actornet.testing.cluster.Cluster`, and asks each recorded request
again, from a client of the recorded asker's name, at the recorded offsets on
the cluster's Clock: an hour of traffic replays in the time its handlers take.
Each answer is compared with the recorded one.

Replayed are the requests the network's clients asked: a request an actor
asked or forwarded is left to the actors to ask again, as they did while the
incident was recorded.  Tells are replayed too (they may change the actors'
state) but have no answer to compare, nor has a request the dispatcher failed
itself (a timeout, a lost actor, a refusal: the journal does not record those).
"""

import attrs
from twisted.internet.defer import gatherResults, succeed

from actornet.protocols import codec
from actornet.protocols.codes import Status
from actornet.protocols.databag import as_body
from actornet.protocols.errors import ActornetError
from actornet.testing.cluster import Cluster
from actornet.testing.recording import Outcome, read_recording

ANONYMOUS = "replay"
"""The client name for requests whose asker did not stamp its route."""


@attrs.frozen
class Difference:
    """A replayed request whose answer is not the recorded one.

    ``key`` is the request's journal key ``(server, seq)``; ``at`` its offset
    in seconds from the first replayed request; ``recorded`` and ``replayed``
    are :class:`~actornet.testing.recording.Outcome` records.
    """

    key: tuple
    service: str
    method: str
    at: float
    recorded: Outcome
    replayed: Outcome


async def replay(journal, actors, *, services=None, reactor=None):
    """Replay the requests recorded in the journal file ``journal`` against ``actors``.

    @param actors: fresh actor instances, named as the recorded ones were when
        answers name them (a gathered answer is keyed by actor name).
    @param services: only the requests to these services, when given.
    @param reactor: the real reactor that drives the cluster's Clock.
    @return: the :class:`Difference` of every request whose answer differs,
        in the order they were recorded; empty when every answer matches.
    @raise FileNotFoundError: when there is no file at ``journal``.
    @raise sqlite3.Error: when ``journal`` is not a readable journal file.
    """
    names = {actor.name for actor in actors}
    requests = [request for request in read_recording(journal)
                if not request.forwarded and request.asker not in names
                and (services is None or request.service in services)]
    cluster = await Cluster(reactor, mode="memory").start()
    try:
        for actor in actors:
            await cluster.add(actor)
        outcomes = await _ask_again(cluster, requests)
    finally:
        await cluster.stop()
    first = requests[0].at if requests else 0.0
    return [Difference(request.key, request.service, request.method, request.at - first,
                       request.answer, outcome)
            for request, outcome in zip(requests, outcomes, strict=True)
            if request.answer is not None and not request.answer.matches(outcome)]


async def _ask_again(cluster, requests):
    """Send each request at its recorded offset on the cluster's Clock; the
    outcomes, in order, once every answer is in."""
    clients = {}
    for asker in sorted({request.asker or ANONYMOUS for request in requests}):
        clients[asker] = await cluster.client(asker)
    start = cluster.clock.seconds()
    first = requests[0].at if requests else 0.0
    outcomes = []
    for request in requests:
        wait = start + (request.at - first) - cluster.clock.seconds()
        if wait > 0:
            await cluster.advance(wait)
        outcomes.append(_sent(clients[request.asker or ANONYMOUS], request))
    return await gatherResults(outcomes, consumeErrors=True)


def _sent(client, request):
    """Send ``request`` from ``client``: a Deferred firing with its Outcome (None
    for a tell)."""
    if request.tell:
        client.tell(request.service, request.method, request.body, target=request.target)
        return succeed(None)
    return client.ask(request.service, request.method, request.body, target=request.target,
                      timeout=request.ttl, idempotent=request.idempotent).addCallbacks(
        _answered, _failed)


def _answered(bag):
    """The answer as the journal would hold it: the body's map, in plain values."""
    return Outcome(Status.SUCCESS, codec.decode(codec.encode(as_body(bag))))


def _failed(failure):
    failure.trap(ActornetError)
    error = failure.value
    return Outcome(error.status, error=error.remote_type or error.status.label)
