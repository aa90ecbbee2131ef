"""Errors a caller can catch, one per way a message can fail.

Every error carries a :class:`~actornet.protocols.codes.Status`, so code that only cares
about the category can look at ``error.status`` and code that cares about the
detail can catch the subclass.
"""

from actornet.protocols.codes import Status


class ActornetError(Exception):
    """Base of every actornet error; ``status`` says which kind of failure it is."""

    status = Status.FAILURE

    def __init__(self, message="", *, status=None, remote_type=None, route=()):
        super().__init__(message)
        if status is not None:
            self.status = Status.parse(status)
        self.message = message
        self.remote_type = remote_type
        self.route = route

    def __str__(self):
        shown = self.remote_type and self.remote_type != self.status.label
        where = f" ({self.remote_type})" if shown else ""
        return f"{self.status.label}{where}: {self.message}"


class RemoteError(ActornetError):
    """The handler ran and raised; ``remote_type`` names the exception's class."""


class ActorLost(ActornetError):
    """The actor that had the request went away before it answered."""

    status = Status.ACTOR_LOST


class RequestTimeout(ActornetError):
    """No answer came before the request's deadline."""

    status = Status.TIMEOUT


class DownstreamTimeout(RequestTimeout):
    """The actor asked timed out asking another: not this asker's own deadline.

    Caught by ``except RequestTimeout`` too; the message names both requests.
    """

    remote_name = "DownstreamTimeout"


class Cancelled(ActornetError):
    """The asker cancelled the request (its Deferred's ``cancel()``); the handler
    was told to stop, and no answer will come."""

    status = Status.CANCELLED


class NoWorkers(ActornetError):
    """No connected actor serves the service (or the named targets are absent)."""

    status = Status.NO_WORKERS


class FederationDown(ActornetError):
    """The dispatcher reached cannot reach the rest of the network (its NATS link is
    down); the service or actor asked for may be on another dispatcher."""

    status = Status.FEDERATION_DOWN


class UnknownService(ActornetError):
    """No actor has ever served the service: likely a typo (the request ran nowhere)."""

    status = Status.UNKNOWN_SERVICE


class UnknownMethod(ActornetError):
    """The actor that got the request has no handler of that name (nothing ran)."""

    status = Status.UNKNOWN_METHOD


class Unauthorized(ActornetError):
    """The dispatcher refused the connection's token."""

    status = Status.UNAUTHORIZED


class ProtocolError(ActornetError):
    """A frame could not be decoded; ``status`` says which part was malformed."""

    status = Status.MALFORMED_ENVELOPE


_BY_STATUS = {
    Status.ACTOR_LOST: ActorLost,
    Status.TIMEOUT: RequestTimeout,
    Status.CANCELLED: Cancelled,
    Status.NO_WORKERS: NoWorkers,
    Status.UNKNOWN_SERVICE: UnknownService,
    Status.FEDERATION_DOWN: FederationDown,
    Status.UNKNOWN_METHOD: UnknownMethod,
    Status.UNAUTHORIZED: Unauthorized,
    Status.MALFORMED_ENVELOPE: ProtocolError,
    Status.MALFORMED_BODY: ProtocolError,
    Status.TOO_LARGE: ProtocolError,
}


def error_for(status, message, remote_type=None, route=()):
    """Build the most specific error for a failed answer's status."""
    status = Status.parse(status)
    if remote_type == DownstreamTimeout.remote_name:
        cls = DownstreamTimeout
    else:
        cls = _BY_STATUS.get(status, RemoteError)
    return cls(message, status=status, remote_type=remote_type, route=route)
