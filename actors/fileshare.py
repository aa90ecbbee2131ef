"""A file share: an actor that serves the files under one folder, read-only.

Like NorFab's file sharing service, it lets any member of the network list a
folder, look at a file's size and hash, and copy it in chunks
(:func:`actornet.fetch.fetch` is the client side).  Chunks keep every frame far
below the dispatcher's frame limit and keep memory flat on both sides, however
large the file.

Every path a request names is relative to the shared folder, and anything that
would reach outside it (``..``, an absolute path, a symlink whose target lies
elsewhere) is refused with :class:`PathOutsideRoot`.  Errors name the path as
the asker gave it, never the folder's place on this host.  Disk work (scans,
hashing, reads) runs on the actor's runner (a thread pool) so a big folder or
file never stalls the actor's other requests, and a listing's cost is bounded
whatever the asker sends (:mod:`~actornet.actors.listing`).
"""

import hashlib
import os
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from actornet.actors.actor import Actor, handler
from actornet.actors.listing import glob_files, inside, parse_pattern, walk_files

MAX_CHUNK = 4 * 1024 * 1024
HASH_BLOCK = 1024 * 1024
HASH_CACHE_ENTRIES = 4096


class PathOutsideRoot(PermissionError):
    """A request named a path outside the shared folder."""

    def __init__(self, path):
        super().__init__(f"{path!r} is outside the shared folder")
        self.path = path


class FileShare(Actor):
    """Serves the files below the ``root`` option to the network.

    Options: ``root``, the shared folder (relative to ``self.config_dir``;
    default: the current directory); ``max_chunk``, the most bytes one
    ``fetch`` answer carries (default 4 MiB; keep it well under the
    dispatcher's ``max_frame_bytes``).
    """

    services = ("fileshare",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._hashes = OrderedDict()
        self.chunks_served = 0

    @property
    def root(self):
        """The shared folder, fully resolved (symlinks included)."""
        configured = self.options.get("root")
        if configured is None:
            return os.path.realpath(Path.cwd())
        folder = Path(configured).expanduser()
        if not folder.is_absolute():
            folder = Path(self.config_dir) / folder
        return os.path.realpath(folder)

    @property
    def max_chunk(self):
        size = self.options.get("max_chunk", MAX_CHUNK)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{self.name}: max_chunk must be a positive integer, got {size!r}")
        return size

    # -- handlers ----------------------------------------------------------

    @handler(name="list")
    def list_files(self, bag):
        """``{pattern}`` (a glob, ``**`` recursive; default ``*``) → ``{files,
        truncated}``: the matching files' paths relative to the root, sorted;
        ``truncated`` is true when the scan stopped at ``MAX_VISITED`` entries
        or ``MAX_LISTED`` files, so more files may match.

        @raise PatternTooComplex: for a pattern over the limits, before any disk work.
        """
        pattern = _text(bag.get("pattern", "*"), "pattern")
        _check_relative(pattern)
        wanted = parse_pattern(pattern)
        root = self.root
        return self.runner.run(glob_files, root, wanted).addCallback(_listing)

    @handler
    def walk(self, bag):
        """``{path}`` (a folder, default ``.``) → ``{files, truncated}``: every
        file below it, relative to the root, sorted (bounded as ``list`` is)."""
        relative = _text(bag.get("path", "."), "path")
        root = self.root
        folder = _resolve(root, relative)
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                raise NotADirectoryError(f"{relative!r} is not a folder")
            raise FileNotFoundError(f"{relative!r} does not exist in the shared folder")
        return self.runner.run(walk_files, root, folder, relative).addCallback(_listing)

    @handler
    def details(self, bag):
        """``{path}`` → ``{path, size, mtime, sha256}``; the hash is remembered
        for as long as the file's size and modification time stay the same."""
        relative = _text(bag.get("path"), "path")
        full = _file(self.root, relative)
        try:
            info = os.stat(full)
        except OSError as e:
            raise _relative_error(e, relative) from None
        key = (full, info.st_size, info.st_mtime_ns)
        answer = {"path": relative, "size": info.st_size, "mtime": info.st_mtime}
        cached = self._hashes.get(key)
        if cached is not None:
            self._hashes.move_to_end(key)
            return dict(answer, sha256=cached)

        def remember(digest):
            self._hashes[key] = digest
            while len(self._hashes) > HASH_CACHE_ENTRIES:
                self._hashes.popitem(last=False)
            return dict(answer, sha256=digest)

        return self.runner.run(_sha256, full, relative).addCallback(remember)

    @handler
    def fetch(self, bag):
        """``{path, offset, size}`` → ``{data, offset, eof}``: at most ``max_chunk``
        bytes from ``offset``; ``eof`` is true when they reach the file's end."""
        relative = _text(bag.get("path"), "path")
        offset = _count(bag.get("offset", 0), "offset")
        size = min(_count(bag.get("size", self.max_chunk), "size"), self.max_chunk)
        full = _file(self.root, relative)

        def served(answer):
            self.chunks_served += 1
            return answer

        return self.runner.run(_read, full, relative, offset, size).addCallback(served)


# -- paths -------------------------------------------------------------------


def _text(value, what):
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if "\0" in value:
        raise ValueError(f"{what} {value!r} contains a NUL character")
    return value


def _listing(found):
    """A scan's ``(files, truncated)`` as the answer ``list`` and ``walk`` give."""
    files, truncated = found
    return {"files": files, "truncated": truncated}


def _check_relative(path):
    """Refuse absolute paths and ``..`` before touching the disk."""
    parts = PurePosixPath(path.replace(os.sep, "/")).parts
    if os.path.isabs(path) or path.startswith(("/", "\\")) or ".." in parts:
        raise PathOutsideRoot(path)


def _resolve(root, relative):
    """The real path of ``relative`` under ``root``, symlinks followed.

    @raise PathOutsideRoot: when it is, or resolves to, a place outside ``root``.
    """
    _check_relative(relative)
    full = os.path.realpath(os.path.join(root, relative))
    if not inside(root, full):
        raise PathOutsideRoot(relative)
    return full


def _file(root, relative):
    """Like :func:`_resolve`, and the path must be an existing regular file."""
    full = _resolve(root, relative)
    if not os.path.isfile(full):
        if os.path.isdir(full):
            raise IsADirectoryError(f"{relative!r} is a folder, not a file")
        raise FileNotFoundError(f"{relative!r} does not exist in the shared folder")
    return full


def _relative_error(error, relative):
    """The same kind of OSError, naming ``relative`` instead of the absolute path."""
    reason = error.strerror or type(error).__name__
    return type(error)(f"{relative!r}: {reason}")


def _count(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


# -- disk work, run in the thread pool ----------------------------------------


def _sha256(full, relative):
    digest = hashlib.sha256()
    try:
        with open(full, "rb") as source:
            while block := source.read(HASH_BLOCK):
                digest.update(block)
    except OSError as e:
        raise _relative_error(e, relative) from None
    return digest.hexdigest()


def _read(full, relative, offset, size):
    try:
        with open(full, "rb") as source:
            length = os.fstat(source.fileno()).st_size
            source.seek(offset)
            data = source.read(size)
    except OSError as e:
        raise _relative_error(e, relative) from None
    return {"data": data, "offset": offset, "eof": offset + len(data) >= length}
