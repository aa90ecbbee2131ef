"""The monitoring endpoints' optional token check (``Authorization: Bearer TOKEN``).

Both endpoints (the twisted.web one and the health thread) ask the same
question of a request's ``Authorization`` header, so the rule and the reasons a
401 gives live here once; the WebSocket gateway reads the header with
:func:`token_in` too.
"""

import hmac

CHALLENGE = 'Bearer realm="actornet"'
MALFORMED = "the Authorization header must be 'Bearer TOKEN'"


def token_in(authorization):
    """The token an ``Authorization`` header's value (text) presents, or None
    when the header is not ``Bearer TOKEN``."""
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def refusal(authorization, token):
    """Why a request with header ``authorization`` (text, or None when absent) may
    not see a page that requires ``token``; None when it may (or no token is
    required).  The reason is one line, for the 401's body."""
    if token is None:
        return None
    if not authorization:
        return "this endpoint needs the network's token: send 'Authorization: Bearer TOKEN'"
    given = token_in(authorization)
    if given is None:
        return MALFORMED
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "wrong token"
    return None
