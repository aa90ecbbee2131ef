"""A dispatcher's journal read back as the requests it saw, each with its answer.

The journal (:mod:`actornet.dispatcher.journal`) keeps every request and answer
the dispatcher routed, one row each, with the route the bag carried there.  A
request's route ends with the dispatcher's own stamp, whose ``seq`` is the
request's key and is never reused; the answer comes back carrying exactly that
route plus the worker's stamp (the dispatcher refuses any other,
:func:`~actornet.dispatcher.routes.extends`), and is recorded with the
dispatcher's stamp on it.  So the answer to a request is the first answer
recorded after it whose route *begins with the request's whole route*, stamp
for stamp, byte for byte.  A forwarded request carries its original's route
further on, so the final answer also begins with the original's route and
pairs with it, which is the answer its asker got.

What the journal cannot say is left out or marked: the dispatcher's own
failures (timeouts, lost actors, refusals) are not recorded, so such a request
has no recorded answer (``answer`` is None), as has a tell.
"""

import sqlite3
from pathlib import Path

import attrs

from actornet.actors.requests import error_of
from actornet.dispatcher.journal import COLUMNS
from actornet.protocols import codec
from actornet.protocols.codes import Kind, Status
from actornet.protocols.stamp import Stamp


@attrs.frozen
class Outcome:
    """How a request ended: a success's ``body``, or a failure's ``status`` and
    ``error`` (the type the answer names, e.g. ``ValueError`` or ``timeout``)."""

    status: Status
    body: object = None
    error: str | None = None

    @property
    def failed(self):
        return self.status != Status.SUCCESS

    def matches(self, other):
        """Successes match when their bodies are equal; failures when their status
        and error type are (messages may name times, hosts or ids)."""
        if self.failed or other.failed:
            return (self.status, self.error) == (other.status, other.error)
        return self.body == other.body


@attrs.frozen
class RecordedRequest:
    """One request as the dispatcher recorded it.

    ``key`` is its journal key ``(server, seq)``; ``at`` the dispatcher's time
    when it arrived; ``asker`` the name on its first stamp (None when the
    asker did not stamp); ``forwarded`` whether an actor passed it on from
    another request; ``answer`` the recorded :class:`Outcome`, or None.
    """

    key: tuple
    at: float
    service: str
    method: str
    body: object
    target: object = "any"
    ttl: float = 30.0
    idempotent: bool = False
    tell: bool = False
    asker: str | None = None
    forwarded: bool = False
    answer: Outcome | None = None


def read_recording(path):
    """The requests recorded in the journal file at ``path``, oldest first, each
    paired with its answer.

    The file is opened read-only: a journal a dispatcher is still writing may be
    read, and nothing is changed.
    @raise FileNotFoundError: when there is no file at ``path``.
    @raise sqlite3.Error: when ``path`` is not a readable journal.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no journal file at {path}")
    connection = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        rows = connection.execute(f"SELECT {COLUMNS} FROM bags ORDER BY seq").fetchall()
    finally:
        connection.close()
    requests, routes, answers = [], [], []
    for server, seq, at, service, method, envelope, body, route in rows:
        envelope = codec.decode(bytes(envelope))
        route = tuple(codec.decode(bytes(route)))
        body = codec.decode(bytes(body)) if len(body) else None
        if envelope.get("k") == Kind.REQUEST:
            requests.append(_request((server, seq), at, service, method, envelope, body,
                                     route))
            routes.append(route)
        elif envelope.get("k") == Kind.RESPONSE:
            answers.append((route, _outcome(envelope, body)))
    return _paired(requests, routes, answers)


def _request(key, at, service, method, envelope, body, route):
    return RecordedRequest(
        key=key, at=at, service=service, method=method, body=body,
        target=envelope.get("tgt", "any"), ttl=envelope.get("ttl", 30.0),
        idempotent=envelope.get("idem", False), tell=envelope.get("nr", False),
        asker=_asker(route, key[0]), forwarded="fwd" in envelope)


def _asker(route, server):
    """The name on the route's first stamp, unless it is the dispatcher's."""
    try:
        first = Stamp.from_wire(route[0]) if route else None
    except ValueError:
        return None
    return first.name if first is not None and first.name != server else None


def _outcome(envelope, body):
    status = Status.parse(envelope.get("st", Status.SUCCESS))
    if status == Status.SUCCESS:
        return Outcome(status, body)
    return Outcome(status, error=error_of(envelope).remote_type)


def _paired(requests, routes, answers):
    """Each request with the first answer (in journal order) whose route begins
    with the request's; found through the request's last stamp, the
    dispatcher's, which no other request carries at that place."""
    by_last_stamp = {route[-1]: index for index, route in enumerate(routes)
                     if route and not requests[index].tell}
    for answer_route, outcome in answers:
        for stamp in answer_route:
            index = by_last_stamp.get(stamp)
            if index is None:
                continue
            route = routes[index]
            if answer_route[:len(route)] == route and requests[index].answer is None:
                requests[index] = attrs.evolve(requests[index], answer=outcome)
    return requests
