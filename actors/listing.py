"""Listing a folder at a bounded cost, for the file share's ``list`` and ``walk``.

Listings run in the actor's thread pool, which every other request of the
actor shares, so their cost must not depend on what the asker sends: a glob
pattern has at most ``MAX_PATTERN_CHARS`` characters and ``MAX_DOUBLE_STARS``
``**`` segments (:class:`PatternTooComplex` otherwise), matching is linear in
the pattern and the path, and a scan reads at most ``MAX_VISITED`` folder
entries and keeps at most ``MAX_LISTED`` files, saying it was truncated when
there was more.
"""

import fnmatch
import os
from pathlib import PurePosixPath

MAX_PATTERN_CHARS = 512
MAX_DOUBLE_STARS = 2
MAX_VISITED = 100_000
MAX_LISTED = 10_000


class PatternTooComplex(ValueError):
    """A ``list`` pattern is longer, or has more ``**`` segments, than allowed."""


def parse_pattern(pattern):
    """A glob's segments, consecutive ``**`` merged (they mean the same).

    @raise PatternTooComplex: naming the limit the pattern is over.
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternTooComplex(f"the pattern has {len(pattern)} characters; at most "
                                f"{MAX_PATTERN_CHARS} are allowed")
    wanted = []
    for part in segments(pattern):
        if part != "**" or wanted[-1:] != ["**"]:
            wanted.append(part)
    stars = wanted.count("**")
    if stars > MAX_DOUBLE_STARS:
        raise PatternTooComplex(f"the pattern has {stars} '**' segments; at most "
                                f"{MAX_DOUBLE_STARS} are allowed")
    return wanted


def inside(root, full):
    """Whether the real path ``full`` is ``root`` or below it."""
    return os.path.commonpath([root, full]) == root


def files_below(folder, depth=None, keep=None):
    """``(files, truncated)``: paths (``/``-separated, relative to ``folder``) of
    the regular files below it for which ``keep(path)`` is true (all if None).

    Symlinked files are included; symlinked folders are not descended, so a
    link loop or a second name for a folder cannot blow the listing up.  At
    most ``depth`` levels of folders are entered (None: all).  The scan looks
    at no more than ``MAX_VISITED`` folder entries (however large one folder
    is) and keeps no more than ``MAX_LISTED`` files: it stops, with
    ``truncated`` true, at the first entry or file past either limit.  Which
    files a truncated scan kept is not specified.
    """
    found = []
    budget = MAX_VISITED
    folders = [("", folder, 0)]
    while folders:
        prefix, where, level = folders.pop()
        try:
            entries = os.scandir(where)
        except OSError:
            continue
        with entries:
            for entry in entries:
                budget -= 1
                if budget < 0:
                    return found, True
                name = prefix + entry.name
                if _is_folder(entry):
                    if depth is None or level + 1 < depth:
                        folders.append((name + "/", entry.path, level + 1))
                elif _is_file(entry) and (keep is None or keep(name)):
                    if len(found) == MAX_LISTED:
                        return found, True
                    found.append(name)
    return found, False


def _is_folder(entry):
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_file(entry):
    try:
        return entry.is_file()
    except OSError:
        return False


def glob_files(root, wanted):
    """``(files, truncated)``: the files under ``root`` matching ``wanted`` (from
    :func:`parse_pattern`), sorted, without links that lead outside ``root``."""
    depth = None if "**" in wanted else len(wanted)

    def keep(name):
        return matches(wanted, name.split("/")) and _stays_inside(root, root, name)

    files, truncated = files_below(root, depth, keep)
    return sorted(files), truncated


def walk_files(root, folder, relative):
    """``(files, truncated)``: every file below ``folder`` (named ``relative`` in
    the share) as a path relative to ``root``, sorted, without escaping links."""
    prefix = PurePosixPath(*segments(relative))
    files, truncated = files_below(folder, keep=lambda name: _stays_inside(root, folder, name))
    return sorted((prefix / name).as_posix() for name in files), truncated


def _stays_inside(root, folder, name):
    return inside(root, os.path.realpath(os.path.join(folder, name)))


def segments(path):
    """A path's names, without empty and ``.`` segments."""
    return [part for part in path.replace(os.sep, "/").split("/") if part not in ("", ".")]


def matches(pattern, parts):
    """Glob matching by path segment: ``**`` is any number of folders, and a
    name starting with a dot is matched only by a pattern that does too.

    The pattern is run as a set of positions over the parts, so the work is at
    most ``len(pattern) * len(parts)`` segment matches, never exponential in
    the number of ``**`` (backtracking was).
    """
    states = _past_stars(pattern, {0})
    for part in parts:
        hidden = part.startswith(".")
        following = set()
        for position in states:
            if position == len(pattern):
                continue
            head = pattern[position]
            if head == "**":
                if not hidden:
                    following.add(position)
            elif (not hidden or head.startswith(".")) and fnmatch.fnmatchcase(part, head):
                following.add(position + 1)
        states = _past_stars(pattern, following)
        if not states:
            return False
    return len(pattern) in states


def _past_stars(pattern, states):
    """``states`` and every position reached from them by letting ``**`` match nothing."""
    reached = set(states)
    for position in states:
        while position < len(pattern) and pattern[position] == "**":
            position += 1
            reached.add(position)
    return reached
