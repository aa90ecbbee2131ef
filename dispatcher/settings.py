"""The dispatcher's settings: every default defined once, filled by the config."""

import attrs

from actornet.protocols.framing import DEFAULT_MAX_FRAME, message_limit
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

    Limits against hostile or broken peers (as NATS bounds its CONNECT line,
    payloads and slow consumers): ``max_envelope_bytes`` (envelopes are small;
    bodies are never decoded here), ``unregistered_max_frame_bytes`` and
    ``register_timeout`` (what a peer may send before REGISTER, and how long it
    has), ``max_targets`` (names in one target list), ``max_in_flight_per_asker``,
    ``max_retry_body_bytes`` (larger idempotent requests are not kept for a
    retry), ``slow_consumer_seconds`` (how long a reader may stay over
    ``outbound_limit_bytes`` before it is disconnected).
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
    max_envelope_bytes: int = 64 * 1024
    unregistered_max_frame_bytes: int = 4096
    register_timeout: float = 5.0
    max_targets: int = 256
    max_in_flight_per_asker: int = 10_000
    max_retry_body_bytes: int = 1024 * 1024
    slow_consumer_seconds: float = 10.0
    journal: str | None = None
    journal_max_bytes: int = 256 * 1024 * 1024
    journal_max_age: float = 7 * 24 * 3600.0
    identities: tuple = ()

    @property
    def message_limit(self):
        """The largest frame a peer may send: the frame limit less the headroom the
        dispatcher needs for what it adds on the way (stamp, id, deadline, sender)."""
        return message_limit(self.max_frame_bytes)

    @property
    def liveness(self):
        return Liveness(self.keepalive_interval, self.keepalive_multiplier)


DEFAULT_SETTINGS = DispatcherSettings()

CONFIG_KEYS = tuple(field.name for field in attrs.fields(DispatcherSettings)
                    if field.name not in ("max_timeout", "identities"))
"""The settings a config's ``[dispatcher]`` table may set (the rest keep their defaults)."""
