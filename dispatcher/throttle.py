"""Throttling failed registrations per source address.

A peer that keeps presenting wrong tokens is guessing: after ``limit`` failures
from one address within ``window`` seconds, that address's new connections are
closed at once for ``penalty`` seconds (counted, and logged once per burst),
so guessing costs the guesser time and the dispatcher almost nothing.
"""

from collections import deque

from twisted.logger import Logger


class AuthThrottle:
    """Failed registrations by address, on ``clock``."""

    log = Logger()

    def __init__(self, clock, limit=10, window=10.0, penalty=10.0):
        self.clock = clock
        self.limit = limit
        self.window = window
        self.penalty = penalty
        self._failures = {}
        self._blocked_until = {}

    def blocked(self, address):
        """Whether connections from ``address`` are refused right now."""
        until = self._blocked_until.get(address)
        if until is None:
            return False
        if self.clock.seconds() < until:
            return True
        del self._blocked_until[address]
        return False

    def failed(self, address):
        """Record a failed registration from ``address``."""
        now = self.clock.seconds()
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.limit:
            del self._failures[address]
            self._blocked_until[address] = now + self.penalty
            self.log.warn("throttling {address}: {count} failed registrations within "
                          "{window:g} s; refusing its connections for {penalty:g} s",
                          address=address, count=len(times), window=self.window,
                          penalty=self.penalty)
