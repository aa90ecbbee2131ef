"""Deadlines for many keys with one timer: the dispatcher's and the actors' asks.

Deadlines are grouped in buckets of ``resolution`` seconds and a single timer
is armed for the earliest bucket, so an idle process does not wake up, a busy
one does not create (and cancel) a timer per message, and a key that is done
leaves its bucket at once.  A deadline fires at most ``resolution`` late.
"""

import heapq
import math

RESOLUTION = 0.05


class Deadlines:
    """Keys with deadlines; ``expired(keys)`` is called with the keys whose time came."""

    def __init__(self, clock, expired, resolution=RESOLUTION):
        self._clock = clock
        self._expired = expired
        self._resolution = resolution
        self._buckets = {}
        self._heap = []
        self._timer = None

    def add(self, key, deadline):
        """Track ``key`` until ``deadline``; returns its bucket (for :meth:`discard`)."""
        bucket = math.ceil(deadline / self._resolution)
        members = self._buckets.get(bucket)
        if members is None:
            members = self._buckets[bucket] = set()
            heapq.heappush(self._heap, bucket)
            if self._timer is None or bucket * self._resolution < self._timer.getTime():
                self._arm()
        members.add(key)
        return bucket

    def discard(self, key, bucket):
        """Stop tracking ``key`` (in ``bucket``); unknown keys are ignored.

        The timer is left as it is (cancelling and re-arming it for every
        answer would cost each request a timer); when it fires with nothing
        due it does not re-arm.  Owners call :meth:`stop` when they are done.
        """
        members = self._buckets.get(bucket)
        if members is not None:
            members.discard(key)
            if not members:
                del self._buckets[bucket]

    def _arm(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        heap = self._heap
        while heap and heap[0] not in self._buckets:
            heapq.heappop(heap)
        if heap:
            delay = max(0.0, heap[0] * self._resolution - self._clock.seconds())
            self._timer = self._clock.callLater(delay, self._fire)

    def _fire(self):
        self._timer = None
        now = self._clock.seconds()
        heap = self._heap
        due = []
        while heap and heap[0] * self._resolution <= now:
            due.extend(self._buckets.pop(heapq.heappop(heap), ()))
        self._arm()
        if due:
            self._expired(due)

    def stop(self):
        """Cancel the timer; nothing expires after this."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
