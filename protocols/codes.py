"""Message kinds and status codes.

Status codes borrow HTTP's numbers where one fits, so a user who knows HTTP can
guess their meaning, and are as precise as dRPC's: a caller can always tell a
failure of the handler from a failure to reach it.
"""

from enum import IntEnum


class Kind(IntEnum):
    """What a frame is for."""

    REGISTER = 1
    READY = 2
    REQUEST = 3
    RESPONSE = 4
    EVENT = 5
    KEEPALIVE = 6
    DISCONNECT = 7
    ERROR = 8
    """A tell that could not be delivered (no asker is waiting for it)."""
    SUBSCRIBE = 9
    UNSUBSCRIBE = 10
    REFUSED = 11
    """The dispatcher refuses the connection (registration, a frame it cannot read)."""
    PROGRESS = 12
    """A handler's report on a request still in flight; never its answer."""
    CANCEL = 13
    """The asker no longer wants the answer: the handler should stop."""


class Status(IntEnum):
    """Outcome of a request, carried in the envelope of every answer."""

    SUCCESS = 200
    MALFORMED_ENVELOPE = 400
    UNAUTHORIZED = 401
    UNKNOWN_SERVICE = 404
    UNKNOWN_METHOD = 405
    NAME_TAKEN = 409
    ACTOR_LOST = 410
    TOO_LARGE = 413
    MALFORMED_BODY = 422
    BUSY = 429
    CANCELLED = 499
    """The asker cancelled the request (nginx's 499: the client closed it)."""
    FAILURE = 500
    FEDERATION_DOWN = 502
    """The service or actor may be on another dispatcher, and this dispatcher's
    link to the federation (NATS) is down."""
    NO_WORKERS = 503
    TIMEOUT = 504
    HOP_LIMIT_EXCEEDED = 508
    SHUTTING_DOWN = 599

    @classmethod
    def parse(cls, value):
        """Map a wire value to a Status, or FAILURE when the value is unknown."""
        try:
            return cls(value)
        except ValueError:
            return cls.FAILURE

    @property
    def label(self):
        """The lower-case name users see in errors, e.g. ``actor_lost``."""
        return self.name.lower()


LIFECYCLE_TOPIC = "actornet.actors"
"""The dispatcher publishes here when an actor joins, leaves or dies."""

SUPERVISOR_TOPIC = "actornet.supervisor"
"""The dispatcher publishes supervisors' restarts and give-ups here (a supervisor
in another process reports them with ``mmi.supervisor_event``)."""

RESERVED_TOPIC_PREFIX = "actornet."
"""Topics under this prefix are published by the dispatcher alone."""

INVENTORY_RELOADED = "inventory.reloaded"
"""The inventory actor publishes here after it re-read its files."""
