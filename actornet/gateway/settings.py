"""The ``[gateway]`` table: where the WebSocket gateway listens and its limits.

    [gateway]
    listen = "tcp:5572:interface=127.0.0.1"
    token = "..."                  # optional: the gateway's own token
    origins = ["http://127.0.0.1:5571"]   # browser pages allowed to connect
    max_message_bytes = 1048576    # one WebSocket message, either way
    max_calls = 64                 # calls in flight on one connection

Without ``origins`` the pages of the dispatcher's own ``http`` endpoint are the
only ones allowed (none when it has no ``http``); clients that are not browsers
send no Origin header and are not concerned.
"""

import attrs
from twisted.internet import endpoints

from actornet.tables import Reader

KEYS = ("listen", "token", "origins", "max_message_bytes", "max_calls")
MIN_MESSAGE_BYTES = 1024
"""Below this a call with a modest answer could not pass."""


@attrs.frozen
class GatewayConfig:
    """``origins``: allowed Origin patterns (``*`` matches anything), or None for
    the dispatcher's own http origins."""

    listen: str
    token: str | None = attrs.field(default=None, repr=False)
    origins: tuple | None = None
    max_message_bytes: int = 1024 * 1024
    max_calls: int = 64


def read_gateway(path, table, network_token, identities):
    """The checked ``[gateway]`` table.

    @param network_token: the ``[dispatcher]`` token, with which a gateway that
        has a token of its own connects (None when the network has none).
    @param identities: the network's identities; with them and a gateway
        token, the network must have a shared token for the gateway to use.
    @raise ConfigError: naming the file, the key and the problem.
    """
    reader = Reader(path, "gateway", table, KEYS)
    listen = reader.get("listen", str, check=bool, expect="an endpoint string")
    reader.endpoint("listen", listen, endpoints.serverFromString)
    token = reader.get("token", str, None, bool, "non-empty text")
    if token is not None and identities and network_token is None:
        reader.fail("token", "with [identities], the gateway connects with the shared "
                             "dispatcher.token: set it too")
    if token is not None and token == network_token:
        reader.fail("token", "the same as dispatcher.token: the gateway's token must be a "
                             "secret of its own (or leave it out to pass clients' tokens on)")
    origins = reader.text_list("origins", None)
    for index, origin in enumerate(origins or ()):
        if "://" not in origin:
            reader.fail(f"origins[{index}]", f"expected scheme://host:port (e.g. "
                                             f"http://127.0.0.1:5571), got {origin!r}")
    defaults = GatewayConfig(listen)
    return GatewayConfig(
        listen=listen, token=token, origins=origins,
        max_message_bytes=reader.get(
            "max_message_bytes", int, defaults.max_message_bytes,
            lambda n: MIN_MESSAGE_BYTES <= n <= 2**31,
            f"an integer from {MIN_MESSAGE_BYTES} to {2**31}"),
        max_calls=reader.get("max_calls", int, defaults.max_calls, lambda n: n > 0,
                             "a positive integer"))
