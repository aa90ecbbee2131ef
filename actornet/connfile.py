"""The connection-info file: where the dispatcher listens and its token.

The dispatcher writes it at start (readable by its owner only, as it holds the
token) and removes it on a clean shutdown; the command-line client reads it so
that ``actornet call`` needs no flags on the dispatcher's own machine.
"""

import json
import os
from pathlib import Path


def write(path, endpoint, token, pid):
    """Write the file atomically with mode 0600; create its folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoint": endpoint, "token": token, "pid": pid}, f)
    os.replace(temporary, path)


def read(path):
    """The ``{"endpoint", "token", "pid"}`` the file holds.

    @raise ValueError: when the file is missing or not a connection-info file.
    """
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError as e:
        raise ValueError(f"no connection file at {path}: is a dispatcher running? "
                         "(or pass --connect)") from e
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read the connection file {path}: {e}") from e
    if not isinstance(info, dict) or not isinstance(info.get("endpoint"), str):
        raise ValueError(f"{path} is not an actornet connection file")
    return info


def remove(path, pid):
    """Remove the file if it is still ours (another dispatcher may have replaced it)."""
    try:
        if read(path).get("pid") == pid:
            os.unlink(path)
    except (ValueError, OSError):
        pass
