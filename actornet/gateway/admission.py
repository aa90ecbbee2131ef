"""Who may open a WebSocket, decided before anything is routed.

A client presents a token as ``?token=...`` in the URL (a browser cannot set
headers on a WebSocket) or in an ``Authorization: Bearer ...`` header.  With a
gateway token configured, that token must match it (compared in constant
time) and the gateway then connects with the network's own token; without
one, the presented token is what the gateway connects with, so the dispatcher
judges it as it judges any peer's (the shared token or an identity's).

Browsers also send an Origin header, checked by autobahn against the allowed
origins (:func:`origins_of` gives the default ones); other clients send none.
"""

import hmac

from autobahn.websocket.types import ConnectionDeny

from actornet.dispatcher import bearer

from .frames import CODECS, JSON


def chosen_codec(offered):
    """The codec for the subprotocols a client offered, in its order of
    preference; JSON when it offered none.

    @return: ``(codec, subprotocol)`` where ``subprotocol`` is the one to
        answer with, or None when none was offered.
    @raise ConnectionDeny: (400) it offered only subprotocols the gateway does
        not speak.
    """
    if not offered:
        return CODECS[JSON], None
    for name in offered:
        if name in CODECS:
            return CODECS[name], name
    raise ConnectionDeny(400, f"no subprotocol in common: offered {', '.join(offered)}; "
                              f"the gateway speaks {', '.join(CODECS)}")


def presented_token(request):
    """The token in the request's ``token`` query parameter or its
    ``Authorization: Bearer`` header, or None.

    @raise ConnectionDeny: (400) more than one token, or an Authorization
        header of another scheme.
    """
    tokens = list(request.params.get("token", []))
    header = request.headers.get("authorization")
    if header is not None:
        token = bearer.token_in(header)
        if token is None:
            raise ConnectionDeny(400, bearer.MALFORMED)
        tokens.append(token)
    if len(tokens) > 1:
        raise ConnectionDeny(400, "present one token, in ?token= or in the Authorization "
                                  "header, not both")
    return tokens[0] if tokens else None


def token_to_connect_with(presented, gateway_token, network_token):
    """The token the connection's client registers with.

    @raise ConnectionDeny: (401) the gateway has a token and ``presented`` is
        not it.
    """
    if gateway_token is None:
        return presented
    if presented is None:
        raise ConnectionDeny(401, "unauthorized: a token is required")
    if not hmac.compare_digest(presented.encode(), gateway_token.encode()):
        raise ConnectionDeny(401, "unauthorized: missing or wrong token")
    return network_token


def origins_of(address):
    """The origins of pages served from a listening ``address``: its host and
    port (any host when it listens on every interface; ``localhost`` too for a
    loopback one); none for a unix socket, whose pages reach browsers through
    a proxy only it knows."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None:
        return ()
    if host in ("0.0.0.0", "::"):
        return (f"http://*:{port}",)
    if ":" in host:
        host = f"[{host}]"
    if host in ("127.0.0.1", "[::1]"):
        return (f"http://{host}:{port}", f"http://localhost:{port}")
    return (f"http://{host}:{port}",)
