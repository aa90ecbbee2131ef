"""How actornet shows answers and errors to people and to other programs.

The ``actornet`` command and the WebSocket gateway (:mod:`actornet.gateway`)
both use these, so a failure reads the same in a shell and in a browser, and
an answer's bytes and times come out as the same JSON.
"""

import base64
import datetime

from actornet.cli_connect import ConnectionFailed
from actornet.protocols.errors import ActornetError


def error_line(error):
    """The one line that tells a user what went wrong, e.g. ``actornet:
    unknown_service: no actor has ever served 'nope'``: an actornet error names
    its status label (and the handler's exception type when it is not the label's),
    a failed connection says so, anything else names its type."""
    if isinstance(error, ActornetError):
        return f"actornet: {error}"
    if isinstance(error, (ConnectionFailed, ValueError, OSError)):
        return f"actornet: connection failed: {error}"
    return f"actornet: failed: {type(error).__name__}: {error}"


def jsonable(value):
    """``json.dumps``'s ``default=``: bytes as ``{"$base64": ...}``, datetimes in ISO
    8601, anything else JSON has no type for as its text."""
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)
