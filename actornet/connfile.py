"""The connection-info file: where the dispatcher listens and its token.

The dispatcher writes it at start (readable by its owner only, as it holds the
token) and removes it on a clean shutdown; the command-line client reads it so
that ``actornet call`` needs no flags on the dispatcher's own machine.

One file names one dispatcher: a second dispatcher refuses to start over a
file whose dispatcher is still running (:class:`ConnectionFileTaken`) rather
than silently take it over, replaces a stale one (its pid is gone), and on stop
removes the file only if it is still its own.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path

from twisted.logger import Logger

log = Logger()


class ConnectionFileTaken(Exception):
    """The connection file belongs to another dispatcher that is running."""


def running(pid):
    """Whether a process with this pid exists."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_free(path):
    """Make sure this process may write the file at ``path``.

    @raise ConnectionFileTaken: naming the file and the running dispatcher's pid.
    """
    try:
        info = read(path)
    except ValueError:
        return
    pid = info.get("pid")
    if pid != os.getpid() and running(pid):
        raise ConnectionFileTaken(
            f"the connection file {path} belongs to the dispatcher with pid {pid} "
            f"({info['endpoint']}), which is running; give this network its own "
            "connection_file in [dispatcher] (or false for none)")
    if pid != os.getpid():
        log.info("replacing the stale connection file {path} (its dispatcher, pid {pid}, "
                 "is not running)", path=str(path), pid=pid)


def write(path, endpoint, token, pid):
    """Write the file atomically with mode 0600; create its folder if needed.

    The contents go to a fresh temporary file in the same folder (``mkstemp``:
    created with ``O_EXCL | O_NOFOLLOW``, mode 0600 whatever the umask) that
    then replaces ``path``.  So nothing already in the folder, such as a
    leftover temporary file with a wider mode or a symlink another user
    planted, can widen the token's mode or redirect the write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"endpoint": endpoint, "token": token, "pid": pid}, f)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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


def read_running(path):
    """Like :func:`read`, for a client: the file's dispatcher must be running.

    @raise ValueError: also when the dispatcher it names is not running.
    """
    info = read(path)
    if not running(info.get("pid")):
        raise ValueError(f"the dispatcher in {path} (pid {info.get('pid')}) is not running")
    return info


def remove(path, pid):
    """Remove the file if it is still ours (another dispatcher may have replaced it)."""
    try:
        if read(path).get("pid") == pid:
            os.unlink(path)
    except (ValueError, OSError):
        pass
