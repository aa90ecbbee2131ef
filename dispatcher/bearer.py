"""The monitoring endpoints' optional token check (``Authorization: Bearer TOKEN``).

Both endpoints (the twisted.web one and the health thread) ask the same
question of a request's ``Authorization`` header, so the rule and the reasons a
401 gives live here once.
"""

import hmac

CHALLENGE = 'Bearer realm="actornet"'


def refusal(authorization, token):
    """Why a request with header ``authorization`` (text, or None when absent) may
    not see a page that requires ``token``; None when it may (or no token is
    required).  The reason is one line, for the 401's body."""
    if token is None:
        return None
    if not authorization:
        return "this endpoint needs the network's token: send 'Authorization: Bearer TOKEN'"
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "the Authorization header must be 'Bearer TOKEN'"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "wrong token"
    return None
