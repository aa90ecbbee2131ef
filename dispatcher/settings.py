"""The dispatcher's settings: every default defined once, filled by the config."""

import attrs

from actornet.protocols.framing import DEFAULT_MAX_FRAME
from actornet.protocols.liveness import DEFAULT_INTERVAL, DEFAULT_MULTIPLIER, Liveness


@attrs.frozen
class DispatcherSettings:
    """How a dispatcher behaves; field names are the config's ``[dispatcher]`` keys.

    ``token``: when set, every peer must present it in REGISTER (or be one of
    ``identities``); it admits as the shared identity, which may do anything
    that is not the dispatcher's alone.
    ``identities``: :class:`~actornet.dispatcher.identity.Identity` records (the
    config's ``[identities.NAME]`` tables); when there are any, a peer must be
    one of them (by client certificate or token) or present ``token``.
    ``request_timeout``: the deadline of a request that names none;
    ``max_timeout`` caps any deadline a request asks for.
    ``outbound_limit_bytes``: what may pile up for a slow reader before
    requests for it are refused with BUSY.
    ``drain_seconds``: how long a stopping dispatcher lets requests finish.
    """

    name: str = "dispatcher"
    token: str | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    hop_limit: int = 32
    request_timeout: float = 30.0
    max_timeout: float = 3600.0
    keepalive_interval: float = DEFAULT_INTERVAL
    keepalive_multiplier: int = DEFAULT_MULTIPLIER
    outbound_limit_bytes: int = 8 * 1024 * 1024
    drain_seconds: float = 5.0
    identities: tuple = ()

    @property
    def liveness(self):
        return Liveness(self.keepalive_interval, self.keepalive_multiplier)


DEFAULT_SETTINGS = DispatcherSettings()
