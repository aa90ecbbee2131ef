"""The journal: the bags that pass the dispatcher, kept in an SQLite file.

As z_server keeps bags in storage under their (server, sequence) key, a
dispatcher with ``journal = "PATH"`` records every bag it routes (requests,
answers, events) under the key of its own route stamp: its name and the
stamp's ``seq``.  Actors save, fetch and merge bags through the ``journal``
service (:mod:`~actornet.dispatcher.journal_service`).

The per-message cost on the reactor is one attribute check (the hook is
``if journal is not None``) and, when on, copying a few references into a
batch.  Every query runs in the pool's one thread (``cp_min = cp_max = 1``),
never on the reactor; a batch is written in one transaction once it holds
``batch_rows`` bags or ``batch_seconds`` after its first.  The file is bounded:
bags older than ``max_age`` are dropped, the oldest are dropped to keep the
file under ``max_bytes`` (SQLite's ``max_page_count`` refuses to grow past it
in any case; the WAL is checkpointed and truncated at an eighth of it), and a
batch that would not fit on the disk is refused.  What is dropped, refused or
fails to be written is counted in the dispatcher's stats (``journal_*``), and
the first failure and every thousandth are logged; a failing disk never stops
the routing of bags.
"""

import os
import shutil
import sqlite3

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger

from actornet.protocols import codec
from actornet.protocols.stamp import route_from_wire

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bags (seq INTEGER PRIMARY KEY, server TEXT NOT NULL, "
    "at REAL NOT NULL, service TEXT, method TEXT, envelope BLOB NOT NULL, "
    "body BLOB NOT NULL, route BLOB NOT NULL, size INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS bags_at ON bags (at)",
    "CREATE INDEX IF NOT EXISTS bags_service ON bags (service)",
)

"""A file keeps the bags of one dispatcher, whose stamps number them: ``seq`` is
the table's own row id (one B-tree fewer to write per bag than a separate key),
and ``server`` is kept beside it."""

ROW_OVERHEAD = 64
"""Bytes a row costs beyond its blobs (key, numbers, index entries), roughly."""

PAGE_COST = 1.5
"""The file's bytes per byte of rows, pages being partly filled (measured: 1.45)."""

DISK_RESERVE = 16 * 1024 * 1024
"""Free space a batch must leave on the disk (for SQLite's WAL and everyone else)."""

COLUMNS = "server, seq, at, service, method, envelope, body, route"

INSERT = (f"INSERT OR REPLACE INTO bags ({COLUMNS}, size) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, length(?6) + length(?7) + length(?8))")
"""Keep one bag (the values of :data:`COLUMNS`), replacing what its key held."""


class JournalUnusable(Exception):
    """The journal's file cannot be opened or created; the message says why."""


class Journal:
    """Records bags in batches and reads them back, off the reactor thread.

    @param clock: times the batches (the reactor, or a ``Clock`` in tests).
    @param path: the SQLite file; its folder must exist and be writable.
    @param outbox: the dispatcher's outbox, whose ``seq`` keys each bag.
    @param stats: the dispatcher's counters, where ``journal_*`` counts go.
    @param pool: an ``adbapi.ConnectionPool`` for tests; made from ``path`` if None.
    """

    log = Logger()

    def __init__(self, clock, path, outbox, stats, max_bytes, max_age, *,
                 batch_seconds=0.005, batch_rows=500, pool=None):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise JournalUnusable(f"journal {path}: the folder {folder} does not exist")
        if os.path.isdir(path):
            raise JournalUnusable(f"journal {path}: is a folder, not a file")
        if not os.access(folder, os.W_OK):
            raise JournalUnusable(f"journal {path}: the folder {folder} is not writable")
        self.clock = clock
        self.path = path
        self.folder = folder
        self.server = outbox.name
        self.outbox = outbox
        self.stats = stats
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.batch_seconds = batch_seconds
        self.batch_rows = batch_rows
        self.pool = pool if pool is not None else adbapi.ConnectionPool(
            "sqlite3", path, check_same_thread=False, cp_min=1, cp_max=1, cp_noisy=False,
            cp_openfun=self._prepare)
        self._pending = []
        self._waiters = []
        self._timer = None
        self._writes = set()
        self.busy = 0
        """How many queries are in the database thread or its queue now."""
        outbox.seq = max(outbox.seq, last_seq(path))

    def _prepare(self, connection):
        """Set up a new connection (in the pool's thread): WAL, the size cap, the table."""
        connection.isolation_level = None
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = max(16, self.max_bytes * 7 // 8 // page_size)
        connection.execute(f"PRAGMA max_page_count={pages}")
        connection.execute(f"PRAGMA wal_autocheckpoint={max(16, pages // 8)}")
        connection.execute(f"PRAGMA journal_size_limit={self.max_bytes // 8}")
        for statement in SCHEMA:
            connection.execute(statement)
        connection.isolation_level = ""

    # -- writing -------------------------------------------------------------

    def record(self, envelope, body, service, method):
        """Keep a routed bag under the key of the stamp just added (``outbox.seq``);
        ``service`` and ``method`` are what it asks or answers (an event's topic
        and None), by which :meth:`last` finds it."""
        envelope = dict(envelope)
        route = envelope.pop("r", ())
        self._pending.append((self.outbox.seq, self.clock.seconds(), service, method,
                              envelope, body if type(body) is bytes else bytes(body),
                              list(route)))
        self._queued()

    def save(self, seq, envelope, bag, route):
        """Keep ``bag`` (a decoded value) under ``(server, seq)``, replacing what was
        there.  Fires (with the key) once it is written; fails when it cannot be."""
        self._pending.append((seq, self.clock.seconds(), envelope.get("svc"),
                              envelope.get("m"), envelope, codec.encode(bag), list(route)))
        written = Deferred()
        self._waiters.append(written)
        self._queued()
        return written.addCallback(lambda _: [self.server, seq])

    def _queued(self):
        if len(self._pending) >= self.batch_rows:
            self.flush()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.batch_seconds, self.flush)

    def flush(self):
        """Write what is pending now, in one transaction.

        @return: a Deferred firing once it is written, or its failure counted
            (it never fails).
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        rows, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        if not rows:
            return succeed(None)
        written = self._track(self.pool.runInteraction(self._write, rows, self.clock.seconds()))
        self._writes.add(written)
        written.addBoth(self._written, written, len(rows), waiters)
        return written

    def _written(self, result, written, count, waiters):
        self._writes.discard(written)
        if isinstance(result, dict):
            for counter, value in result.items():
                self.stats[counter] += value
            failure = None
        else:
            failure = result
            self.stats["journal_write_failures"] += 1
            self.stats["journal_lost"] += count
            failures = self.stats["journal_write_failures"]
            if failures == 1 or failures % 1000 == 0:
                self.log.error("journal {path}: a batch of {count} bags was not written: "
                               "{error}", path=self.path, count=count,
                               error=failure.getErrorMessage())
        for waiter in waiters:
            if failure is None:
                waiter.callback(None)
            else:
                waiter.errback(failure)

    def _write(self, txn, rows, now):
        """In the pool's thread: drop what is too old or too much, then insert."""
        counts = {}
        txn.execute("DELETE FROM bags WHERE at < ?", (now - self.max_age,))
        if txn.rowcount > 0:
            counts["journal_dropped_age"] = txn.rowcount
        encoded = [(self.server, seq, at, service, method, codec.encode(envelope), body,
                    codec.encode(route))
                   for seq, at, service, method, envelope, body, route in rows]
        incoming = sum(len(row[5]) + len(row[6]) + len(row[7]) + ROW_OVERHEAD
                       for row in encoded)
        dropped = self._make_room(txn, incoming)
        if dropped:
            counts["journal_dropped_size"] = dropped
        if shutil.disk_usage(self.folder).free < incoming * 2 + DISK_RESERVE:
            raise JournalUnusable(f"the disk of {self.folder} is nearly full")
        txn.executemany(INSERT, encoded)
        counts["journal_written"] = len(rows)
        return counts

    def _make_room(self, txn, incoming):
        """Drop the oldest bags until ``incoming`` more bytes fit under ``max_bytes``
        (less an eighth for the WAL, and a tenth of the rest for slack); how many
        were dropped.  The file's use is read from its page counts, which costs
        nothing however many bags it holds."""
        page_size = txn.execute("PRAGMA page_size").fetchone()[0]
        pages = txn.execute("PRAGMA page_count").fetchone()[0]
        free = txn.execute("PRAGMA freelist_count").fetchone()[0]
        excess = (pages - free) * page_size + incoming * PAGE_COST - self.max_bytes * 63 // 80
        if excess <= 0:
            return 0
        freed = dropped = 0
        last = None
        for seq, size in txn.execute("SELECT seq, size FROM bags ORDER BY seq"):
            freed += (size + ROW_OVERHEAD) * PAGE_COST
            dropped += 1
            last = seq
            if freed >= excess:
                break
        if last is not None:
            txn.execute("DELETE FROM bags WHERE seq <= ?", (last,))
        return dropped

    # -- reading -------------------------------------------------------------

    def get(self, server, seq):
        """The bag under ``(server, seq)`` as :func:`row_dict` gives it, or None."""
        self.flush()
        return self._track(self.pool.runQuery(
            f"SELECT {COLUMNS} FROM bags WHERE server = ? AND seq = ?", (server, seq))).addCallback(
            lambda rows: row_dict(rows[0]) if rows else None)

    def last(self, n, service=None):
        """The ``n`` newest bags (of ``service``, when given), newest first: by
        key, so a bag merged into keeps its place."""
        self.flush()
        if service is None:
            query = self.pool.runQuery(
                f"SELECT {COLUMNS} FROM bags ORDER BY seq DESC LIMIT ?", (n,))
        else:
            query = self.pool.runQuery(
                f"SELECT {COLUMNS} FROM bags WHERE service = ? ORDER BY seq DESC LIMIT ?",
                (service, n))
        return self._track(query).addCallback(lambda rows: [row_dict(row) for row in rows])

    def merge(self, seq, envelope, bag, route):
        """Merge the map ``bag`` into the map under ``(server, seq)`` (keeping it
        when there is none yet) and save the result, in one transaction.

        @return: a Deferred firing with the merged map.
        @raise ValueError: (through the Deferred) when the stored bag is not a map.
        """
        self.flush()
        return self._track(self.pool.runInteraction(self._merge, seq, self.clock.seconds(),
                                                    envelope, bag, list(route)))

    def _merge(self, txn, seq, at, envelope, bag, route):
        row = txn.execute("SELECT body FROM bags WHERE server = ? AND seq = ?",
                          (self.server, seq)).fetchone()
        if row is not None:
            stored = codec.decode(bytes(row[0]))
            if not isinstance(stored, dict):
                raise ValueError(f"the bag under {[self.server, seq]} is not a map")
            bag = {**stored, **bag}
        txn.execute(INSERT, (self.server, seq, at, envelope.get("svc"), envelope.get("m"),
                             codec.encode(envelope), codec.encode(bag), codec.encode(route)))
        return bag

    def _track(self, query):
        """Count ``query`` in :attr:`busy` until its result reaches the reactor."""
        self.busy += 1

        def done(result):
            self.busy -= 1
            return result
        return query.addBoth(done)

    # -- lifecycle -----------------------------------------------------------

    def idle(self):
        """Write what is pending; fires once every write started so far is done."""
        self.flush()
        return gatherResults(list(self._writes)).addCallback(lambda _: None)

    def close(self):
        """Write what is pending, wait for every write, and close the file."""
        return self.idle().addCallback(lambda _: self.pool.close())


def row_dict(row):
    """A stored bag for readers: its key, time, envelope fields, decoded body and
    route (stamps as dicts)."""
    server, seq, at, service, method, envelope, body, route = row
    return {
        "key": [server, seq],
        "at": at,
        "service": service,
        "method": method,
        "envelope": codec.decode(bytes(envelope)),
        "body": codec.decode(bytes(body)) if len(body) else None,
        "route": [stamp.as_dict() for stamp in route_from_wire(codec.decode(bytes(route)))],
    }


def last_seq(path):
    """The highest ``seq`` kept in the file at ``path`` (0 for none).

    A restarted dispatcher stamps on from there, so its new bags never take the
    keys of the bags its earlier run kept.  Read once, as the journal is made
    (before the dispatcher routes anything); an unreadable file counts as empty
    here and fails at its first write.
    """
    if not os.path.isfile(path):
        return 0
    connection = sqlite3.connect(path, timeout=1.0)
    try:
        row = connection.execute("SELECT max(seq) FROM bags").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        connection.close()
    return row[0] or 0


def open_journal(clock, settings, outbox, stats):
    """The journal ``settings`` ask for, or None: when they ask for none, or when
    its file cannot be used (logged as an error and counted as
    ``journal_unusable``: the dispatcher then serves without it)."""
    if settings.journal is None:
        return None
    try:
        return Journal(clock, settings.journal, outbox, stats, settings.journal_max_bytes,
                       settings.journal_max_age)
    except JournalUnusable as e:
        Journal.log.error("{error}; the dispatcher runs without a journal", error=str(e))
        stats["journal_unusable"] += 1
        return None
