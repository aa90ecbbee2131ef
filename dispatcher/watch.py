"""Snapshots for threads, and how long the reactor has been stalled.

The monitoring endpoints that run in threads (the health endpoint, and
``prometheus_client``'s Twisted resource, which collects in the reactor's thread
pool) must never read the dispatcher's tables while the reactor changes them.
A :class:`ReactorWatch` asks the reactor for a snapshot instead
(``callFromThread``) and waits a little; when the reactor is blocked (an actor in
the same process doing blocking work), it hands out the last snapshot it has,
saying how old it is and how long the reactor has not answered, which a
heartbeat on the reactor (a ``LoopingCall``) measures.  The heartbeat also
takes a snapshot every second, so the one a stall leaves is recent.
"""

import threading
import time

from twisted.internet.task import LoopingCall

from actornet.dispatcher.exposition import Look

HEARTBEAT_SECONDS = 0.1
REFRESH_SECONDS = 1.0
PATIENCE_SECONDS = 0.5


class ReactorWatch:
    """Fresh snapshots for other threads, with a stall measure.

    @param reactor: the reactor the dispatcher runs on (its ``callFromThread``,
        and the clock of the heartbeat).
    @param take: returns a new snapshot; called on the reactor only.
    @param patience: how long :meth:`look` waits for the reactor.
    @param monotonic: the seconds stamps and stalls are measured in.
    """

    def __init__(self, reactor, take, patience=PATIENCE_SECONDS, monotonic=time.monotonic):
        self.reactor = reactor
        self.take = take
        self.patience = patience
        self.monotonic = monotonic
        self.alive_at = monotonic()
        self._latest = (None, self.alive_at)
        self._asked = None
        self._lock = threading.Lock()
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = reactor

    @property
    def beating(self):
        return self._heartbeat.running

    def start(self):
        """Start the heartbeat and take a first snapshot (on the reactor)."""
        self._heartbeat.start(HEARTBEAT_SECONDS, now=True)
        self._answer(None)

    def stop(self):
        if self._heartbeat.running:
            self._heartbeat.stop()

    def look(self):
        """A :class:`~actornet.dispatcher.exposition.Look`; call it from a thread,
        never from the reactor (it would wait for itself).

        It waits up to ``patience`` seconds for a fresh snapshot, unless the
        heartbeat says the reactor has already been stalled that long: a probe
        made during a long block answers at once.  At most one request for a
        snapshot waits on the reactor, however many threads look."""
        with self._lock:
            asked, first = self._asked, self._asked is None
            if first:
                asked = self._asked = threading.Event()
        if first:
            self.reactor.callFromThread(self._answer, asked)
        if not self.beating or self.monotonic() - self.alive_at < self.patience:
            asked.wait(self.patience)
        snapshot, taken_at = self._latest
        now = self.monotonic()
        stalled = not asked.is_set()
        return Look(snapshot, stalled, max(now - self.alive_at, 0.0) if stalled else 0.0,
                    max(now - taken_at, 0.0))

    def _beat(self):
        """On the reactor: say it is alive, and every ``REFRESH_SECONDS`` take a
        snapshot, so the one a stall leaves is never much older than the stall."""
        self.alive_at = self.monotonic()
        if self.alive_at - self._latest[1] >= REFRESH_SECONDS:
            self._latest = (self.take(), self.alive_at)

    def _answer(self, asked):
        """On the reactor: take a snapshot and wake the threads waiting for it."""
        try:
            self.alive_at = self.monotonic()
            self._latest = (self.take(), self.alive_at)
        finally:
            if asked is not None:
                with self._lock:
                    self._asked = None
                asked.set()
