"""Who may join: the checks a REGISTER must pass before a peer gets READY.

A pure function of the envelope, the dispatcher's token and the registry, so
every refusal can be tested with plain values.  The token is compared in
constant time.
"""

import hmac

import attrs

from actornet.dispatcher.identity import SHARED
from actornet.protocols.codes import Status

MAX_NAME = 200


@attrs.frozen
class Refusal:
    """Why a peer is refused; ``counter`` names the statistic it is counted under."""

    status: Status
    message: str
    counter: str | None = None


def admit(envelope, token, registry):
    """The :class:`~actornet.dispatcher.identity.Identity` a REGISTER ``envelope``
    is admitted as, or the :class:`Refusal` that turns it away."""
    if token is not None:
        offered = envelope.get("tok", "").encode()
        if not hmac.compare_digest(offered, token.encode()):
            return Refusal(Status.UNAUTHORIZED,
                           "missing or wrong token" if offered else "a token is required",
                           "unauthorized")
    name = envelope["name"]
    services = envelope.get("svcs", [])
    if not 0 < len(name) <= MAX_NAME or not all(isinstance(s, str) and s for s in services):
        return Refusal(Status.MALFORMED_ENVELOPE,
                       f"a name is 1 to {MAX_NAME} characters and services are non-empty text")
    holder = registry.by_name.get(name)
    if holder is not None:
        return Refusal(Status.NAME_TAKEN,
                       f"the name {name!r} is taken by connection {holder.conn_id}", "name_taken")
    return SHARED
